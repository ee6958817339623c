"""Keyword literals asked of a record's JSON text (engine/json_keywords.py): a "no" there must mean that no
value of the normalised event holds the literal, whatever the value's case, escapes and neighbours; and a
hunt that asks it gives the answers of one that builds every keyword text.

The hostile spellings are those where a JSON text and the lower-cased value part: characters the writer
escapes (backslash, quote, control characters), another writer's `\\u` and `\\/` escapes, and the two
characters whose lower case holds an ASCII letter (İ, the Kelvin sign).
"""

from __future__ import annotations

import json
from collections import Counter

import orjson
import pytest
from conftest import REPO, SHARED_DATA, rules_matcher, shared
from hypothesis import given, settings
from hypothesis import strategies as st

from svchunt.engine import json_keywords as jk
from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.engine.matcher import Matcher
from svchunt.values import keyword_text

pytestmark = pytest.mark.skipif(jk.hyperscan is None, reason="hyperscan not installed: the exact test is the only one")

LITERALS = ["sekurlsa::", "\\mimilib.dll", 'say "hi"', "kiwi legit printer", "eo.oe.kiwi"]
SIGMA_WINDOWS = SHARED_DATA / "sigma" / "rules" / "windows"
EXAMPLES = REPO / "examples"


def _texts(fields: dict) -> list[str]:
    """The JSON texts a parser could write of a record with these EventData fields."""
    record = {"Event": {"System": {"Channel": "Security", "EventID": 4688}, "EventData": fields}}
    plain = orjson.dumps(record).decode()  # as the EVTX parser: UTF-8, only \\ " and control escaped
    ascii_only = json.dumps(record)  # every non-ASCII character as \\uXXXX
    slashes = plain.replace("/", "\\/")  # a writer that escapes the solidus
    return [plain, ascii_only, slashes]


def test_which_literals_can_be_asked_of_json_text() -> None:
    for literal in ["sekurlsa::", "\\mimilib.dll", 'a"b', "privilege::debug", "a b"]:
        assert jk.json_safe(literal), literal
    for literal in ["", "é.exe", "tab\there", "12345", "1e+20", "true", "false", "-inf", "nan"]:
        assert not jk.json_safe(literal), literal
    assert jk.json_keywords(["sekurlsa::", "é.exe"]) is None, "one unsafe literal: the exact test for all"
    assert jk.json_keywords(["sekurlsa::"]) is jk.json_keywords(["sekurlsa::"]), "one database per set"


@pytest.mark.parametrize(
    "value",
    [
        "C:\\Windows\\mimilib.dll",
        "SEKURLSA::LogonPasswords",
        "run \"C:\\x\\MIMILIB.DLL\" now",
        'he did say "HI" twice',
        "\u212aIWI LEGIT PRINTER",  # the Kelvin sign: lower() makes it k
        "EO.OE.\u212aIWI",
        "\u0130sekurlsa::",  # İ before the literal
        "x\n\tsekurlsa::\r\n",
        "path/to/sekurlsa::/x",
        "ünïcödé \\mimilib.dll",
    ],
)
def test_a_value_holding_a_literal_is_never_absent_from_its_json(value: str) -> None:
    test = jk.json_keywords(LITERALS)
    assert test is not None
    assert any(lit in value.lower() for lit in LITERALS), value
    for text in _texts({"CommandLine": value, "Other": "x"}):
        assert not test.absent(text), text


def test_a_record_without_the_literals_is_absent_unless_unsure() -> None:
    test = jk.json_keywords(LITERALS)
    assert test is not None
    benign = {"CommandLine": "C:\\Windows\\system32\\svchost.exe -k netsvcs", "User": "NT AUTHORITY\\SYSTEM"}
    assert test.absent(orjson.dumps(benign).decode())
    assert test.absent(orjson.dumps({"Path": "c:\\users\\x"}).decode()), "an escaped backslash before u is no \\u escape"
    # unsure spellings: the exact test decides
    assert not test.absent(json.dumps({"Name": "caf\u00e9"}))
    assert not test.absent(orjson.dumps({"Name": "\u212a"}).decode())
    assert not test.absent(orjson.dumps({"Name": "\u0130"}).decode())
    assert not test.absent('{"Url":"http:\\/\\/x"}')
    assert not test.absent("\ud800")  # a lone surrogate cannot be encoded


@settings(max_examples=300, deadline=None)
@given(
    before=st.text(alphabet=st.sampled_from(list('ab\\"/\n\u212a\u0130éK: ')), max_size=6),
    after=st.text(alphabet=st.sampled_from(list('ab\\"/\n\u212a\u0130éK: ')), max_size=6),
    literal=st.sampled_from(LITERALS),
    flips=st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_property_literal_in_lowered_value_is_found(before: str, after: str, literal: str, flips: list[bool]) -> None:
    test = jk.json_keywords(LITERALS)
    assert test is not None
    cased = "".join(c.upper() if flip else c for c, flip in zip(literal, flips + [False] * len(literal), strict=False))
    value = before + cased + after
    assert literal in keyword_text({"v": value}).lower()
    for text in _texts({"Data": value, "n": 5}):
        assert not test.absent(text)


KEYWORD_RULES = {
    # every log: a tool's name in any value (service names, images, share paths, pipes, command lines)
    "any_log": ("{product: windows}", "    kw: ['psexesvc', '\\\\admin$']\n    condition: kw\n"),
    # a group with derived fields (7045's ImagePathNormalised) and a literal with a backslash
    "system": ("{product: windows, service: system}", "    kw: ['\\\\windows\\\\']\n    condition: kw\n"),
    # a header value (Computer) and a keyword with a field condition beside it
    "sysmon": ("{product: windows, service: sysmon}", "    kw: ['.local', 'wkst']\n    sel: {EventID: 1}\n    condition: kw and sel\n"),
}  # fmt: skip


def test_a_sigma_hunt_gives_the_same_answer_with_and_without_the_json_test(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SigmaHQ's windows rules hold `Mimikatz Use`, keywords that meet every event: the JSON test decides
    for most records there (it fires on no sample: our own keyword rules beside it do). Compared with
    every record normalised and every keyword text built."""
    if not SIGMA_WINDOWS.is_dir():
        pytest.skip(f"SigmaHQ rules not found at {SIGMA_WINDOWS}")
    rules_matcher(tmp_path, KEYWORD_RULES)
    paths = [str(shared("evtx-attack-samples")), str(EXAMPLES)]
    options = HuntOptions(paths=paths, rule_paths=[str(SIGMA_WINDOWS), str(tmp_path)], builtin=False, workers=2)
    fast = run_hunt(options)
    monkeypatch.setattr(jk, "hyperscan", None)
    monkeypatch.setattr(Matcher, "record_filter", lambda self, key: None)
    exact = run_hunt(options)
    assert len(exact.alerts) > 1000
    fired = Counter(a.rule.title for a in exact.alerts)
    assert all(fired[name] > 3 for name in KEYWORD_RULES), fired
    assert [a.to_dict() for a in fast.alerts] == [a.to_dict() for a in exact.alerts]
    assert fast.stats.records_read == exact.stats.records_read
    assert fast.stats.records_matched == exact.stats.records_matched
