"""Partial-text search built only from Elasticsearch server-core features (SPEC §3, §4).

The minimal distribution has no n-gram tokenizer and no ``wildcard`` field, so the worker
computes the searchable representation itself and the query side mirrors it:

* Infix match (terms of 3+ characters). Each searchable value is lower-cased and split on
  white space into chunks (a query term never contains white space, so a match always lies
  inside one chunk). A chunk becomes the sequence of its overlapping trigrams, each encoded
  as one token the ``standard`` tokenizer keeps whole, space-separated, in order, in the
  ``text`` field ``audit.search.grams`` (one array element per chunk). A term is the
  ``match_phrase`` of its own encoded trigrams: phrase adjacency means trigram i+1 sits right
  after trigram i in one chunk, which happens exactly when the term occurs contiguously in
  that chunk. The position gap between array elements stops a phrase spanning two chunks,
  so trigrams from different values never combine into a false positive.
* Word-start match (terms of 1-2 characters): ``audit.search.prefixes`` is a keyword array
  of the 1- and 2-character substrings starting at a word start, queried with ``term``
  (cheap, and not an "expensive query"). A word starts at the beginning of a value, after
  white space, and where letters/digits follow another character, so ``ja``, ``ac`` and
  ``co`` match ``jane@acme.com`` but ``me`` does not.
* Nothing in the user's text is ever parsed as query syntax: characters are literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

GRAMS_FIELD = "audit.search.grams"
PREFIXES_FIELD = "audit.search.prefixes"
GRAM = 3
MIN_INFIX_TERM = GRAM  # shorter terms can only match the start of a word
#: Search covers the first this-many characters of each value (the whole value is stored).
#: Without a cap, a 170 KB actor name became ~1.5 MB of trigram tokens in one document.
MAX_SEARCH_CHARS = 1024

_PLAIN_GRAM = re.compile(r"[a-z0-9]{3}")


def fold(text: str) -> str:
    """Case folding used on both sides (index and query), so they cannot disagree."""
    return text.lower()


def encode_gram(gram: str) -> str:
    """One trigram as one standard-tokenizer token.

    ``[a-z0-9]{3}`` stays as is (readable, small); anything else (punctuation, spaces,
    non-ASCII) becomes ``x`` + hex of its UTF-8 bytes. The two forms cannot collide: a plain
    token has 3 characters, an encoded one at least 7.
    """
    if _PLAIN_GRAM.fullmatch(gram):
        return gram
    return "x" + gram.encode("utf-8").hex()


def gram_tokens(chunk: str) -> list[str]:
    """The encoded overlapping trigrams of an already folded chunk, in order."""
    return [encode_gram(chunk[i : i + GRAM]) for i in range(len(chunk) - GRAM + 1)]


def chunks(values: Iterable[str | None]) -> list[str]:
    """Distinct folded white-space separated pieces of all values (of their first
    `MAX_SEARCH_CHARS` characters), first-seen order."""
    seen: dict[str, None] = {}
    for value in values:
        for piece in fold((value or "")[:MAX_SEARCH_CHARS]).split():
            seen.setdefault(piece, None)
    return list(seen)


def word_starts(chunk: str) -> list[int]:
    """Where words start in a chunk: its beginning, and where letters/digits follow another
    character (``jane@acme.com``: j, a, c)."""
    return [
        i for i, ch in enumerate(chunk) if i == 0 or (ch.isalnum() and not chunk[i - 1].isalnum())
    ]


def word_prefixes(chunk: str) -> set[str]:
    """The 1- and 2-character substrings of a folded chunk that begin at a word start."""
    return {chunk[i : i + n] for i in word_starts(chunk) for n in (1, 2) if i + n <= len(chunk)}


# Actor names, e-mails, organization and object names repeat from event to event: caching
# a piece's tokens takes the search representation off the worker's hot path for them.
# Small bound: one-off pieces (Log IDs) pass through, and the recurring ones stay recent.
@lru_cache(maxsize=4096)
def _piece_grams(piece: str) -> str:
    return " ".join(gram_tokens(piece))


@lru_cache(maxsize=4096)
def _piece_prefixes(piece: str) -> frozenset[str]:
    return frozenset(word_prefixes(piece))


def search_representation(values: Iterable[str | None]) -> dict[str, list[str]]:
    """The ``audit.search`` object of a document whose searchable values are ``values``."""
    pieces = chunks(values)
    grams = [_piece_grams(piece) for piece in pieces if len(piece) >= GRAM]
    prefixes: set[str] = set()
    for piece in pieces:
        prefixes |= _piece_prefixes(piece)
    return {"grams": grams, "prefixes": sorted(prefixes)}


def term_query(term: str) -> dict[str, Any]:
    """The clause for one already folded, non-empty, white-space free term."""
    if len(term) < MIN_INFIX_TERM:
        return {"term": {PREFIXES_FIELD: term}}
    return {"match_phrase": {GRAMS_FIELD: {"query": " ".join(gram_tokens(term))}}}


def query_terms(q: str) -> list[str]:
    """The distinct folded terms of a user's ``q`` (white-space separated)."""
    return list(dict.fromkeys(fold(q).split()))


def text_query(q: str | None) -> dict[str, Any] | None:
    """Elasticsearch query clause for SPEC §4 ``q``: every term must match; None if blank.

    Filter context: list order is by time, so scoring would only cost time.
    """
    terms = query_terms(q or "")
    if not terms:
        return None
    return {"bool": {"filter": [term_query(term) for term in terms]}}
