"""The compiled helpers (`schemas/_speedups.c`) agree with the Python definitions they copy."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import document, search
from schemas.speedups import compiled

pytestmark = pytest.mark.unit

if compiled is None:  # `make install` builds it; a build without a compiler is not tested here
    pytest.fail("schemas._speedups is not built (pip install -e . with a C compiler)")

# Letters, digits, punctuation, white space of every kind, and characters that change
# length or class when folded (İ, ß, Σ), beside anything else Unicode has.
ALPHABET = st.sampled_from(list("aZ9_-.@ \t\n\u00a0\u2003İßΣ\u03c3\u03c21٣ⅷ")) | st.characters(
    exclude_categories=["Cs"]  # a lone surrogate is no UTF-8 an event can carry
)
TEXT = st.text(ALPHABET, max_size=40)
PIECE = (
    st.text(ALPHABET, min_size=1, max_size=24).map(search.fold).filter(lambda p: p.split() == [p])
)


@given(PIECE)
@settings(max_examples=800)
def test_piece_tokens_are_the_python_definitions(piece: str) -> None:
    codes = search._GramCodes()
    assert compiled.piece_tokens(codes, piece) == search.piece_tokens(piece)


@given(st.lists(st.none() | TEXT, max_size=8), st.integers(min_value=0, max_value=30))
@settings(max_examples=500)
def test_representation_is_the_python_definition(values: list[str | None], max_chars: int) -> None:
    """Same grams in the same order and the same prefixes, from a cache in the same state:
    pieces kept, pieces seen once and new ones alike."""
    results = []
    for implementation in (compiled.representation, search.representation):
        cache = search.PieceCache(max_entries=4)
        for value in values[:3]:  # warm: some pieces kept, some seen once
            for piece in search.fold(value or "").split():
                cache.make(piece)
        results.append(
            (
                implementation(values, max_chars, search.fold, cache.kept, cache.make),
                list(cache.kept),
                list(cache._seen_once),
            )
        )
    assert results[0] == results[1]


def test_the_worker_uses_the_compiled_helpers() -> None:
    assert search._representation is compiled.representation
    assert document._compact.func is compiled.compact  # type: ignore[attr-defined]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=6,
)


class Odd:
    """A value of no JSON type that equals an empty dict: decided by `in` itself."""

    def __eq__(self, other: object) -> bool:
        return other == {}

    __hash__ = None  # type: ignore[assignment]


@given(st.dictionaries(TEXT, JSON | st.just(Odd()) | st.just(()) | st.just(OrderedDict())))
@settings(max_examples=500)
def test_compact_is_the_python_definition(mapping: dict[str, Any]) -> None:
    compiled_result = compiled.compact(document._ABSENT_VALUES, mapping)
    assert compiled_result == document.compact(mapping)
    assert list(compiled_result) == list(document.compact(mapping))  # same order
    other = OrderedDict(mapping)  # another mapping type: its items(), in its order
    assert list(compiled.compact(document._ABSENT_VALUES, other).items()) == list(
        document.compact(other).items()
    )


def test_errors_are_raised_not_swallowed() -> None:
    with pytest.raises(TypeError):
        compiled.piece_tokens({}, b"bytes")
    with pytest.raises(TypeError):
        compiled.representation(["a"], 10, search.fold, [], search.piece_tokens)

    def failing(_piece: str) -> Any:
        raise ValueError("make failed")

    with pytest.raises(ValueError, match="make failed"):
        compiled.representation(["new piece"], 10, search.fold, {}, failing)
