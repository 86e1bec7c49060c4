"""The quick canonical check agrees with the careful one (rfc8785): what it
accepts is canonical, and what it leaves is left for a reason."""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from timebank.canonical import nesting_depth, plainly_canonical

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(value=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5))
def test_whatever_the_quick_check_accepts_is_rfc8785_canonical(value: dict[str, Any]) -> None:
    """For any object, its canonical bytes and two other spellings of it: the
    quick check accepts only bytes that rfc8785 writes, and gives back the object."""
    try:
        canonical = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return
    for spelling in (
        canonical,
        json.dumps(value).encode(),
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),
    ):
        quick = plainly_canonical(spelling)
        if quick is not None:
            assert spelling == canonical
            assert rfc8785.dumps(quick) == spelling


def test_duplicates_fractions_and_big_integers_are_left_to_the_careful_check() -> None:
    """Each of these would be wrong to accept quickly: it is not passed."""
    for raw in (
        b'{"a":1,"a":1}',
        b'{"a":1.5}',
        b'{"a":9007199254740992}',
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":"\\ud800"}',
        b"[1,2]",
        '{"a":"\u00e9"}'.encode(),
    ):
        assert plainly_canonical(raw) is None, raw


def test_nesting_depth_counts_objects_and_arrays() -> None:
    """A flat object is 1 deep; each array or object inside adds one."""
    assert nesting_depth({"a": 1}) == 1
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    assert nesting_depth({}) == 1
