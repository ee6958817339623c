"""One big EVTX file split into ranges of its chunks over the workers: the same events, problems and alerts
as reading it whole; damaged files are never split."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import shared

from svchunt.engine import hunt
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.model import Event
from svchunt.sources import read_events
from svchunt.sources.evtx_ranges import evtx_chunk_ranges, read_chunk_range
from svchunt.sources.evtx_reader import CHUNK_SIZE, HEADER_BLOCK, chunk_layout


def _multi_chunk() -> list[Path]:
    samples = shared("evtx-attack-samples")
    return [p for p in sorted(samples.rglob("*.evtx")) if len(chunk_layout(str(p))[0]) >= 3]


def _key(item: object) -> tuple:
    if type(item) is Event:
        return (item.fields, item.timestamp, item.source, item.record_id, item.line, item.header_record_id)
    return (item.source, item.position, item.reason, item.kept)  # type: ignore[attr-defined]


def test_chunk_ranges_read_every_record_once_as_the_whole_file() -> None:
    files = _multi_chunk()
    assert len(files) >= 8
    split_files = 0
    for path in files:
        whole = [_key(x) for x in read_events(str(path))]
        for parts in (2, 3, 7):
            spans = evtx_chunk_ranges(str(path), parts)
            if spans is None:
                continue
            assert spans[0].first == 0 and spans[-1].end == spans[0].count
            assert all(a.end == b.first for a, b in zip(spans, spans[1:], strict=False))
            assert [_key(x) for s in spans for x in read_chunk_range(s)] == whole
            split_files += 1
    assert split_files >= 3 * 8


def test_damaged_files_are_read_whole(tmp_path: Path) -> None:
    source = _multi_chunk()[0]
    assert evtx_chunk_ranges(str(source), 2) is not None
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(source.read_bytes()[: HEADER_BLOCK + CHUNK_SIZE + 1000])  # the second chunk cut short
    assert evtx_chunk_ranges(str(cut), 2) is None
    garbled = tmp_path / "garbled.evtx"
    data = bytearray(source.read_bytes())
    data[HEADER_BLOCK + CHUNK_SIZE : HEADER_BLOCK + CHUNK_SIZE + 8] = b"XXXXXXXX"  # chunk 1's magic
    garbled.write_bytes(bytes(data))
    assert evtx_chunk_ranges(str(garbled), 2) is None
    single = tmp_path / "one.json"
    shutil.copyfile(Path(__file__), single)
    assert evtx_chunk_ranges(str(single), 2) is None


def test_split_evtx_files_give_the_same_hunt(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    samples = shared("evtx-attack-samples")
    ruleset = load_ruleset(HuntOptions(paths=[]))
    monkeypatch.setattr(hunt, "CHUNK_FILES", 1)  # every file its own chunk (in both runs: the same order)
    whole = run_hunt(HuntOptions(paths=[str(samples)], workers=2), ruleset)
    monkeypatch.setattr(hunt, "SPLIT_BYTES", 1)  # so every healthy multi-chunk file is split
    pieces: list[tuple[str, float]] = []
    split = run_hunt(
        HuntOptions(paths=[str(samples)], workers=2), ruleset, on_chunk=lambda r: pieces.append((r.paths[0], r.files_done))
    )
    ranged = {p for p, share in pieces if share < 1}
    assert len(ranged) >= 8, "multi-chunk files were split"
    for name in ranged:
        assert sum(share for p, share in pieces if p == name) == pytest.approx(1.0)
    assert len(whole.alerts) > 50
    assert [a.to_dict() for a in split.alerts] == [a.to_dict() for a in whole.alerts]
    assert split.problems == whole.problems
    assert (split.stats.records_read, split.stats.records_skipped, split.stats.records_matched) == (
        whole.stats.records_read, whole.stats.records_skipped, whole.stats.records_matched,
    )  # fmt: skip


def test_chunk_headers_read_by_offset_equal_those_read_by_seeking(tmp_path: Path) -> None:
    """The layout of a file on disk is read with pread; a file-like (an in-memory copy, a chunk window) with
    seek and read: both must give the same chunks, damaged headers included."""
    import io

    from svchunt.sources.evtx_reader import _layout

    files = _multi_chunk()
    assert files
    for n, path in enumerate(files[:20]):
        data = bytearray(path.read_bytes())
        data[HEADER_BLOCK + CHUNK_SIZE : HEADER_BLOCK + CHUNK_SIZE + 8] = b"\0" * 8  # chunk 1's magic gone
        for version in (path.read_bytes(), bytes(data)):
            copy = tmp_path / f"{n}.evtx"
            copy.write_bytes(version)
            with open(copy, "rb") as handle:
                on_disk = _layout(handle, len(version))
            assert on_disk == _layout(io.BytesIO(version), len(version))
            assert len(on_disk[0]) >= 3
        assert on_disk[0][1].trouble == "chunk 1 header unreadable"


def test_an_evtx_file_is_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input reader opens a file to tell its format; an EVTX file is then read from that handle (its
    size and chunk headers, its magic not again) and by the parser, not opened a second time by the EVTX
    reader."""
    import builtins
    import os

    path = _multi_chunk()[0]
    opened: list[str] = []
    magic_reads: list[int] = []
    real_open, real_os_open, real_pread = builtins.open, os.open, os.pread

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(path):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def counting_os_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(path):
            opened.append(str(file))
        return real_os_open(file, *args, **kwargs)

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        if offset == 0 and n == 8:
            magic_reads.append(fd)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(os, "pread", counting_pread)
    events = [x for x in read_events(str(path)) if type(x) is Event]
    assert events
    assert opened == [str(path)]
    assert len(magic_reads) == 1


def test_a_chunk_past_the_announced_ones_keeps_the_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A header that announces one chunk fewer than the file holds (with a next record number to match): the
    parser would read the extra chunk in a whole-file read, so the file is not split into ranges."""
    import struct

    from svchunt.sources import evtx_ranges

    source = _multi_chunk()[0]
    spans, _ = chunk_layout(str(source))
    data = bytearray(source.read_bytes())
    struct.pack_into("<Q", data, 0x18, spans[-2].last + 1)  # type: ignore[operator]
    struct.pack_into("<H", data, 0x2A, len(spans) - 1)
    fewer = tmp_path / "fewer.evtx"
    fewer.write_bytes(bytes(data))
    assert evtx_chunk_ranges(str(fewer), 2) is None
    monkeypatch.setattr(evtx_ranges, "_chunk_past", lambda handle, count, size: False)
    assert evtx_chunk_ranges(str(fewer), 2) is not None  # the extra chunk alone is what kept it whole
