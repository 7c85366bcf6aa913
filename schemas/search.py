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
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from schemas.fields import SEARCH_GRAMS, SEARCH_PREFIXES
from schemas.speedups import compiled

GRAMS_FIELD = SEARCH_GRAMS
PREFIXES_FIELD = SEARCH_PREFIXES
GRAM = 3
MIN_INFIX_TERM = GRAM  # shorter terms can only match the start of a word
#: Search covers the first this-many characters of each value (the whole value is stored).
#: Without a cap, a 170 KB actor name became ~1.5 MB of trigram tokens in one document.
MAX_SEARCH_CHARS = 1024

#: The characters a gram may keep as they are (anything else is hex-encoded).
_PLAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
#: A letter or digit (`str.isalnum`: re's \w is exactly that plus "_") not preceded by one,
#: with the character after it if any.
_WORD_START_PREFIX = re.compile(r"(?<![^\W_])[^\W_].?", re.DOTALL)


#: Case folding used on both sides (index and query), so they cannot disagree.
_FOLD: Callable[[str], str] = str.lower


def fold(text: str) -> str:
    """Case folding used on both sides (index and query), so they cannot disagree."""
    return _FOLD(text)


def encode_gram(gram: str) -> str:
    """One trigram as one standard-tokenizer token.

    ``[a-z0-9]{3}`` stays as is (readable, small); anything else (punctuation, spaces,
    non-ASCII) becomes ``x`` + hex of its UTF-8 bytes. The two forms cannot collide: a plain
    token has 3 characters, an encoded one at least 7.
    """
    if len(gram) == GRAM and all(ch in _PLAIN_CHARS for ch in gram):
        return gram
    return "x" + gram.encode("utf-8").hex()


class _GramCodes(dict[str, str]):
    """Trigram -> its token (``encode_gram``), remembered: a stream's values are made of a
    few thousand distinct trigrams, so nearly every gram is one dict lookup, in C. Emptied
    when full (non-ASCII text could otherwise grow it without end)."""

    def __init__(self, max_entries: int = 32768) -> None:
        super().__init__()
        self.max_entries = max_entries

    def __missing__(self, gram: str) -> str:
        if len(self) >= self.max_entries:
            self.clear()
        token = self[gram] = encode_gram(gram)
        return token


_GRAM_CODES = _GramCodes()


def gram_tokens(chunk: str) -> list[str]:
    """The encoded overlapping trigrams of an already folded chunk, in order: ``encode_gram``
    of each (cached per distinct trigram)."""
    return list(map(_GRAM_CODES.__getitem__, [chunk[i : i + GRAM] for i in range(len(chunk) - 2)]))


def word_prefixes(chunk: str) -> set[str]:
    """The 1- and 2-character substrings of a folded chunk that begin at a word start: its
    beginning, and where letters/digits follow another character (``jane@acme.com``: j, a,
    c). A match's second character is never a word start (it follows a letter or digit), so
    one non-overlapping scan finds them all."""
    found = _WORD_START_PREFIX.findall(chunk)
    return {chunk[:1], chunk[:2], *found, *(prefix[0] for prefix in found)} - {""}


#: A piece's search tokens: its trigram tokens space-joined (None under 3 characters), and
#: its word-start prefixes.
PieceTokens = tuple[str | None, frozenset[str]]


def piece_tokens(piece: str) -> PieceTokens:
    """A folded piece's tokens (space-joined grams, or None under 3 characters; word-start
    prefixes). The compiled `piece_tokens` of `schemas._speedups` computes the same."""
    return (
        " ".join(gram_tokens(piece)) if len(piece) >= GRAM else None,
        frozenset(word_prefixes(piece)),
    )


class PieceCache:
    """A piece's search tokens, kept for pieces that recur.

    Actor names, e-mails, organization and object names repeat from event to event; Log IDs
    and request-specific words never do. A piece is kept from its second sighting on, so the
    one-offs pass through a list of first sightings and never push a recurring piece out.
    Both are bounded (oldest out first): a few MB whatever the stream.
    """

    def __init__(self, max_entries: int = 32768) -> None:
        self.max_entries = max_entries
        # OrderedDict: dropping the oldest is O(1) (a dict's `next(iter(...))` walks over
        # the holes its earlier deletions left).
        self._tokens: OrderedDict[str, PieceTokens] = OrderedDict()
        self._seen_once: OrderedDict[str, None] = OrderedDict()

    @property
    def kept(self) -> dict[str, PieceTokens]:
        """The kept pieces' tokens, by piece (read by `representation`, not changed)."""
        return self._tokens

    def tokens(self, piece: str) -> PieceTokens:
        """(space-joined grams, or None under 3 characters; word-start prefixes)."""
        return self._tokens.get(piece) or self.make(piece)

    def make(self, piece: str) -> PieceTokens:
        """The tokens of a piece that is not kept (yet): computed, and kept if seen before."""
        made = _piece_tokens(piece)
        if piece in self._seen_once:  # its second sighting: kept from now on
            del self._seen_once[piece]
            self._admit(self._tokens, piece, made)
        else:
            self._admit(self._seen_once, piece, None)
        return made

    def _admit(self, table: OrderedDict[str, Any], piece: str, value: Any) -> None:
        if len(table) >= self.max_entries:
            table.popitem(last=False)
        table[piece] = value


_PIECES = PieceCache()


def search_representation(values: Iterable[str | None]) -> dict[str, list[str]]:
    """The ``audit.search`` object of a document whose searchable values are ``values``:
    one grams element per distinct piece (first-seen order), the word-start prefixes sorted.

    This runs for every event, about 14 pieces each, nearly all of them found in the cache;
    the loop is compiled when `schemas._speedups` is built (`representation` below is its
    pure-Python copy, the definition).
    """
    grams, prefixes = _representation(values, MAX_SEARCH_CHARS, _FOLD, _PIECES.kept, _PIECES.make)
    return {"grams": grams, "prefixes": sorted(prefixes)}


def representation(
    values: Iterable[str | None],
    max_chars: int,
    folded: Callable[[str], str],
    kept: dict[str, PieceTokens],
    make: Callable[[str], PieceTokens],
) -> tuple[list[str], set[str]]:
    """(grams of each distinct piece in first-seen order, the union of their prefixes): a
    piece is each white-space separated part of ``folded(value[:max_chars])``; its tokens
    are ``kept[piece]``, or else ``make(piece)``."""
    grams: list[str] = []
    prefixes: set[str] = set()
    seen: set[str] = set()
    lookup = kept.get
    for value in values:
        if not value:
            continue
        for piece in folded(value[:max_chars]).split():
            if piece in seen:
                continue
            seen.add(piece)
            piece_grams, piece_prefixes = lookup(piece) or make(piece)
            if piece_grams is not None:
                grams.append(piece_grams)
            prefixes |= piece_prefixes
    return grams, prefixes


#: The implementations in use: compiled when the extension was built (a build without a C
#: compiler leaves it out, and the pure-Python copies do the same work, slower).
if compiled is not None:
    _piece_tokens: Callable[[str], PieceTokens] = partial(compiled.piece_tokens, _GRAM_CODES)
    _representation: Callable[..., tuple[list[str], set[str]]] = compiled.representation
else:
    _piece_tokens = piece_tokens
    _representation = representation


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
