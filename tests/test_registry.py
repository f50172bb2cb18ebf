"""The generic registry: names -> objects or lazy "module:attr" targets, conflicts refused, did-you-mean."""

from __future__ import annotations

import sys
from collections import OrderedDict

import pytest

from deepretrieval.registry import Registry


def test_objects_and_lazy_targets_are_found_by_name() -> None:
    things: Registry[type] = Registry("thing", {"ordered": OrderedDict, "fraction": "fractions:Fraction"})
    assert things.get("ordered") is OrderedDict
    from fractions import Fraction

    assert things.get("fraction") is Fraction
    assert things.names() == ["fraction", "ordered"] and "fraction" in things and "nope" not in things


def test_a_lazy_target_is_imported_on_first_use_only() -> None:
    things: Registry[object] = Registry("thing")
    sys.modules.pop("colorsys", None)
    things.register("hsv", "colorsys:rgb_to_hsv")
    assert "colorsys" not in sys.modules
    found = things.get("hsv")
    import colorsys

    assert found is colorsys.rgb_to_hsv and things.get("hsv") is found


def test_register_again_same_target_is_a_noop_another_is_an_error() -> None:
    things: Registry[object] = Registry("thing", {"a": "json:dumps"})
    things.register("a", "json:dumps")
    with pytest.raises(ValueError, match="^thing 'a' is already registered as json:dumps$"):
        things.register("a", "json:loads")
    things.register("b", OrderedDict)
    with pytest.raises(ValueError, match="thing 'b' is already registered as collections:OrderedDict"):
        things.register("b", dict)


def test_malformed_names_and_targets_are_refused() -> None:
    things: Registry[object] = Registry("thing")
    for name in ("Upper", "", "1st", "with space", 3):
        with pytest.raises(ValueError, match="thing name must be lower-case letters, digits"):
            things.register(name, dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="thing target must look like 'package.module:attr'"):
        things.register("bad", "no_colon_here")
    things.register("missing", "json:no_such_function")
    with pytest.raises(ImportError, match="thing 'missing': module json has no attribute 'no_such_function'"):
        things.get("missing")


def test_unknown_name_is_one_line_with_a_suggestion_and_the_known_names() -> None:
    things: Registry[object] = Registry("retriever", {"bm25": dict, "dense": list, "boolean": set})
    with pytest.raises(ValueError) as caught:
        things.get("bm52")
    assert str(caught.value) == "unknown retriever 'bm52'; did you mean 'bm25'? known: bm25, boolean, dense"
    with pytest.raises(ValueError) as caught:
        things.get("zzz")
    assert str(caught.value) == "unknown retriever 'zzz'; known: bm25, boolean, dense"
