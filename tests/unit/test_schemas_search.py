"""text_query and the search representation (SPEC §4 ``q``), without Elasticsearch.

``matches`` below evaluates a query dict against a document's ``audit.search`` the way
Elasticsearch does for these query types (term on a keyword array; match_phrase with slop 0
on a text array whose elements are separated by a position gap). A property test checks it
against ``spec_match``, a direct reading of the SPEC's rules; the integration tests check
that Elasticsearch agrees.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.search import (
    GRAMS_FIELD,
    MAX_SEARCH_CHARS,
    PREFIXES_FIELD,
    PieceCache,
    encode_gram,
    gram_tokens,
    search_representation,
    text_query,
    word_prefixes,
)


def phrase_in(tokens: list[str], element: str) -> bool:
    words = element.split()
    return any(words[i : i + len(tokens)] == tokens for i in range(len(words) - len(tokens) + 1))


def clause_matches(clause: dict[str, Any], search: dict[str, list[str]]) -> bool:
    if "term" in clause:
        return clause["term"][PREFIXES_FIELD] in search["prefixes"]
    tokens = clause["match_phrase"][GRAMS_FIELD]["query"].split()
    return any(phrase_in(tokens, element) for element in search["grams"])


def matches(query: dict[str, Any] | None, values: list[str]) -> bool:
    search = search_representation(values)
    clauses = query["bool"]["filter"] if query else []
    return all(clause_matches(clause, search) for clause in clauses)


def spec_match(q: str, values: list[str]) -> bool:
    """SPEC §4, read literally: every term matches some value, case-insensitively."""

    def term_ok(term: str, value: str) -> bool:
        if len(term) >= 3:
            return term in value
        return any(
            value.startswith(term, i)
            and (
                i == 0
                or value[i - 1].isspace()
                or (value[i].isalnum() and not value[i - 1].isalnum())
            )
            for i in range(len(value))
        )

    return all(any(term_ok(t, v.lower()) for v in values) for t in q.lower().split())


VALUES = [
    "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f",
    "u-42",
    "Jane Doe",
    "jane@acme.com",
    "org-7",
    "Acme Ltd",
    "Enable compliance — Acme Ltd by Jane Doe",
]


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("ompli", True),
        ("OMPLI", True),
        ("acme.co", True),
        ("6a5e-4f8e", True),
        ("ja", True),
        ("co", True),  # start of "com" in jane@acme.com, of "compliance"
        ("me", False),  # only inside words
        ("e", True),  # "enable"
        ("jane ltd", True),
        ("jane nobody", False),
        ("doe@", False),  # "doe" and "@" are in different values
        ("ane@acme", True),
        ("*", False),
        ("ompli*", False),
        ('"jane"', False),
        ("", True),
    ],
)
def test_spec_examples(q: str, found: bool) -> None:
    assert matches(text_query(q), VALUES) is found
    assert spec_match(q, VALUES) is found


def test_blank_q_is_no_query() -> None:
    assert text_query("") is None
    assert text_query("   \t\n") is None
    assert text_query(None) is None


def test_query_shape_and_term_and() -> None:
    assert text_query("Ompli  JA ompli") == {
        "bool": {
            "filter": [
                {"match_phrase": {GRAMS_FIELD: {"query": "omp mpl pli"}}},
                {"term": {PREFIXES_FIELD: "ja"}},
            ]
        }
    }


@pytest.mark.parametrize(
    "q",
    [
        "a*b",
        "x?y",
        '"quoted"',
        "back\\slash",
        "a/b",
        "f(x)",
        "k:v",
        "AND",
        "a OR b",
        "-x",
        "+y",
        "~z",
        "[1 TO 2]",
    ],
)
def test_query_syntax_is_inert(q: str) -> None:
    """Special characters only ever appear encoded in trigram tokens or as literal term
    values: no query_string / simple_query_string / wildcard / regexp is produced."""
    query = text_query(q)
    assert query is not None
    for clause in query["bool"]["filter"]:
        assert set(clause) <= {"term", "match_phrase"}
        if "match_phrase" in clause:
            assert clause["match_phrase"][GRAMS_FIELD]["query"].replace(" ", "").isalnum()


def test_gram_encoding_is_one_alphanumeric_token() -> None:
    assert encode_gram("abc") == "abc"
    assert encode_gram("a.c") == "x612e63"
    assert encode_gram("é_1") == "x" + "é_1".encode().hex()
    assert gram_tokens("ab") == []
    assert gram_tokens("a.cd") == ["x612e63", "x2e6364"]


def test_word_prefixes() -> None:
    assert word_prefixes("jane@acme.com") == {"j", "ja", "a", "ac", "c", "co"}
    assert word_prefixes("(x)") == {"(", "(x", "x", "x)"}


def test_representation_dedupes_and_splits_on_whitespace() -> None:
    search = search_representation(["Acme Ltd", "acme", None, "ab"])
    assert search["grams"] == ["acm cme", "ltd"]
    assert "ab" in search["prefixes"]


values_strategy = st.lists(
    st.text(alphabet='abcAB12 .-@_*é("', min_size=0, max_size=12), min_size=1, max_size=4
)
term_strategy = st.text(alphabet='abcAB12.-@_*é("', min_size=1, max_size=5)


@settings(max_examples=500, deadline=None)
@given(values=values_strategy, terms=st.lists(term_strategy, min_size=1, max_size=3))
def test_representation_and_query_follow_spec(values: list[str], terms: list[str]) -> None:
    q = " ".join(terms)
    assert matches(text_query(q), values) is spec_match(q, values)


@settings(max_examples=200, deadline=None)
@given(value=st.text(min_size=3, max_size=30), data=st.data())
def test_every_substring_is_found(value: str, data: st.DataObject) -> None:
    """Any piece of 3+ characters of a value (white-space free) finds it: infix search."""
    pieces = [p for p in value.lower().split() if len(p) >= 3]
    if not pieces:
        return
    piece = data.draw(st.sampled_from(pieces))
    start = data.draw(st.integers(0, len(piece) - 3))
    end = data.draw(st.integers(start + 3, len(piece)))
    assert matches(text_query(piece[start:end]), [value])


def test_search_covers_the_first_max_search_chars_of_each_value() -> None:
    name = "a" * (MAX_SEARCH_CHARS - 15) + " inside beyondthecap"
    assert matches(text_query("insi"), [name])
    assert matches(text_query("beyo"), [name])  # starts before the cap
    assert not matches(text_query("thecap"), [name])  # lies past it
    assert matches(text_query("thecap"), ["short", "x beyondthecap"])  # other values whole


def test_a_huge_value_makes_a_bounded_representation() -> None:
    """A 170 KB name (non-ASCII, the costliest encoding) stays a few KB of tokens."""
    search = search_representation(["ü" * 170_000, "é-" * 85_000])
    size = sum(len(element) for element in search["grams"]) + sum(map(len, search["prefixes"]))
    assert size < 2 * MAX_SEARCH_CHARS * len(encode_gram("üüü")) + 100


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from("abz09-.@ _Éé€😀\x00"), max_size=12))
def test_gram_tokens_encode_each_trigram(chunk: str) -> None:
    assert gram_tokens(chunk) == [encode_gram(chunk[i : i + 3]) for i in range(len(chunk) - 2)]


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from("ab1-.@_(É²\u0301"), max_size=10))
def test_word_prefixes_start_where_spec_says_words_start(chunk: str) -> None:
    starts = [
        i for i, ch in enumerate(chunk) if i == 0 or (ch.isalnum() and not chunk[i - 1].isalnum())
    ]
    assert word_prefixes(chunk) == {chunk[i : i + n] for i in starts for n in (1, 2)} - {""}


def test_piece_cache_keeps_recurring_pieces_and_lets_one_offs_pass() -> None:
    cache = PieceCache(max_entries=2)
    for piece in ("jane", "jane", "one-off-1", "one-off-2", "one-off-3"):
        grams, prefixes = cache.tokens(piece)
        assert (grams, set(prefixes)) == (" ".join(gram_tokens(piece)), word_prefixes(piece))
    assert "jane" in cache._tokens  # seen twice: kept, though three one-offs came after
    assert len(cache._tokens) <= 2 and len(cache._seen_once) <= 2
