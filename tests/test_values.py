"""`svchunt.values`: the one text form and the one number parser every stage uses."""

from __future__ import annotations

import math

import pytest

from svchunt.values import (
    elements,
    fold,
    keyword_text,
    keyword_values,
    lookup,
    parse_number,
    present,
    to_text,
)


@pytest.mark.parametrize("value,text", [
    ("x", "x"), (None, None), (True, "true"), (False, "false"), (16, "16"), (-3, "-3"), (2.5, "2.5"),
    (1e300, "1e+300"), (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"),
    (["a", None, 1, True], "a\n1\ntrue"), ({"b": 1, "a": [2]}, '{"a":[2],"b":1}'),
])
def test_to_text(value, text):
    assert to_text(value) == text


@pytest.mark.parametrize("text,number", [
    ("16", 16), (" 16 ", 16), ("-5", -5), ("+7", 7), ("0x10", 16), ("0XfF", 255), ("-0x10", -16), ("1.5", 1.5),
    ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), (16, 16), (2.5, 2.5), (2**64 - 1, 2**64 - 1), (-(2**63), -(2**63)),
    ("18446744073709551615", 2**64 - 1), ("0xFFFFFFFFFFFFFFFF", 2**64 - 1),
])
def test_parse_number_accepts(text, number):
    got = parse_number(text)
    assert got == number and type(got) is type(number)


@pytest.mark.parametrize("value", [
    "", " ", "x", "NaN", "nan", "Infinity", "-inf", "1e500", "-1e500", "1_000", "١٢", "0x", "0x1g", "1.2.3",
    "18446744073709551616", "-9223372036854775809", "1" * 101, 2**64, -(2**63) - 1, float("nan"), float("inf"),
    True, False, None, [1], {"a": 1}, b"1",
])
def test_parse_number_refuses_without_raising(value):
    assert parse_number(value) is None


def test_lists_are_matched_element_by_element():
    assert elements(["a", None, 2, False]) == ["a", "2", "false"]
    assert elements(None) == [] and elements("") == [""]
    assert fold(["A", None, True]) == ("a", "true") and fold("ΟΔΟΣ") == "οδος" and fold(None) is None


def test_present_treats_empty_as_absent():
    assert not present(None) and not present("") and not present([]) and not present(["", None])
    assert present("x") and present(0) and present(False) and present(["", "x"]) and present(math.nan)


def test_keyword_values_and_case_variant_lookup():
    fields = {"a": "x", "b": None, "c": [1, None, "y"], "d": True, "e": 7, "f": []}
    assert keyword_values(fields) == ["x", "1", "y", "true", "7"]
    assert keyword_text(fields) == "\0".join(keyword_values(fields)) + "\0"  # the empty list: an empty segment
    fields = {"Payload": "", "payload": "evil", "PAYLOAD": None}
    assert lookup(fields, ["Payload", "PAYLOAD", "payload"]) == "evil"
    assert lookup({"Payload": "", "payload": None}, ["Payload", "payload"]) == ""
    assert lookup({"payload": []}, ["Payload", "payload"]) == []
    assert lookup({}, ["Payload"]) is None
