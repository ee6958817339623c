"""One big JSON-lines file split into byte ranges over the workers: the same events, line numbers,
problems and alerts as reading it whole."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import REPO

from svchunt.engine import hunt
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.model import Event
from svchunt.sources import read_events
from svchunt.sources.ranges import ByteRange, json_lines_ranges, read_range

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """The example logs three times over, with bad, blank, hostile and very long lines mixed in."""
    lines = [line for f in sorted(EXAMPLES.glob("*.jsonl")) for line in f.read_bytes().splitlines() if line.strip()]
    rng = random.Random(11)
    out: list[bytes] = []
    for _ in range(3):
        for line in lines:
            out.append(line)
            roll = rng.random()
            if roll < 0.03:
                out.append(b'{"EventID": 7045, "Channel": "System"')  # cut short
            elif roll < 0.05:
                out.append(b"")
            elif roll < 0.06:
                out.append(b'{"EventID": 7045, "Channel": "System", "RecordNumber": ' + b"9" * 30 + b"}")
            elif roll < 0.07:
                out.append(b'{"EventID": 7036, "Channel": "System", "param1": "' + b"x" * 5000 + b'"}')
    path = tmp_path_factory.mktemp("ranges") / "big.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _view(items: list) -> list[tuple]:
    return [
        ("event", i.line, i.record_id, i.fields.get("EventID")) if type(i) is Event else ("problem", i.position, i.reason)
        for i in items
    ]


def test_ranges_read_every_line_once_with_its_number(big: Path) -> None:
    whole = _view(list(read_events(str(big))))
    size = big.stat().st_size
    rng = random.Random(5)
    data = big.read_bytes()
    newline = data.index(b"\n", size // 3)
    for cuts in ([newline, newline + 1], sorted(rng.sample(range(1, size), 7)), list(range(1, size, size // 13))):
        bounds = [0, *cuts, size]
        spans = [ByteRange(str(big), a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]
        assert _view([item for span in spans for item in read_range(span)]) == whole


def test_only_plain_json_lines_are_split(tmp_path: Path, big: Path) -> None:
    assert len(json_lines_ranges(str(big), big.stat().st_size, 4) or []) == 4
    pretty = tmp_path / "pretty.json"
    pretty.write_text('{\n  "EventID": 7045\n}\n')
    evtx_like = tmp_path / "x.evtx"
    evtx_like.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    for path in (pretty, evtx_like):
        assert json_lines_ranges(str(path), path.stat().st_size, 4) is None


def test_a_split_file_gives_the_same_hunt(big: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ruleset = load_ruleset(HuntOptions(paths=[]))
    whole = run_hunt(HuntOptions(paths=[str(big)], workers=1), ruleset)
    monkeypatch.setattr(hunt, "SPLIT_BYTES", 1024)
    monkeypatch.setattr(hunt, "RANGES_PER_WORKER", 5)
    pieces: list[float] = []
    split = run_hunt(HuntOptions(paths=[str(big)], workers=2), ruleset, on_chunk=lambda r: pieces.append(r.files_done))
    assert len(pieces) == 10 and sum(pieces) == pytest.approx(1.0)  # really split, progress still one file
    assert len(whole.alerts) > 20
    assert [a.alert_id for a in split.alerts] == [a.alert_id for a in whole.alerts]
    assert [a.to_dict() for a in split.alerts] == [a.to_dict() for a in whole.alerts]
    assert split.problems == whole.problems
    assert (split.stats.records_read, split.stats.records_skipped, split.stats.records_flagged) == (
        whole.stats.records_read, whole.stats.records_skipped, whole.stats.records_flagged,
    )  # fmt: skip
    assert whole.stats.records_skipped > 0 and whole.stats.records_flagged > 0
