"""Bad input: every unreadable record, line, member or file is a Problem naming it; the rest still comes out."""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import evtx
import pytest
from conftest import shared

from svchunt.model import Event, Problem
from svchunt.sources import InputFile, archives, iter_events, iter_inputs, json_reader, read_events

# A sample with three chunks: the middle one can be damaged while the others stay intact.
SAMPLE = ("evtx-attack-samples", "Privilege Escalation", "privesc_unquoted_svc_sysmon_1_11.evtx")


def _split(items: list) -> tuple[list[Event], list[Problem]]:
    return [i for i in items if isinstance(i, Event)], [i for i in items if isinstance(i, Problem)]


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, list[tuple[int, int]]]:
    """The sample's bytes and, from its chunk headers, each chunk's (first, last) record number."""
    data = shared(*SAMPLE).read_bytes()
    count = struct.unpack_from("<H", data, 0x2A)[0]
    spans = [struct.unpack_from("<QQ", data, 4096 + k * 65536 + 0x18) for k in range(count)]
    assert len(spans) >= 3
    total = sum(1 for _ in evtx.PyEvtxParser(str(shared(*SAMPLE))).records_json())
    assert total == spans[-1][1] - spans[0][0] + 1
    return data, spans


def _read_broken(tmp_path: Path, data: bytes) -> tuple[list[Event], list[Problem], str]:
    path = tmp_path / "broken.evtx"
    path.write_bytes(data)
    events, problems = _split(list(read_events(str(path))))
    assert all(p.source == str(path) for p in problems)
    return events, problems, str(path)


def _record_numbers(problems: list[Problem]) -> set[int]:
    return {int(p.position.split()[1]) for p in problems if p.position.startswith("record ")}


def test_truncated_evtx_counts_every_lost_record(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    data, spans = sample
    events, problems, _ = _read_broken(tmp_path, data[: 4096 + 65536 + 30000])
    got = sorted(e.header_record_id for e in events)  # type: ignore[type-var]
    first, last = spans[0]
    # The intact chunk, plus the records of the cut chunk that lie wholly before the cut.
    assert got[: last - first + 1] == list(range(first, last + 1))
    assert spans[1][0] <= got[-1] < spans[1][1], "records before the cut in chunk 1 are recovered"
    lost = set(range(got[-1] + 1, spans[-1][1] + 1))
    assert _record_numbers(problems) == lost and len(problems) == len(lost)
    assert any("truncated" in p.reason for p in problems)


def test_evtx_cut_in_the_slack_of_its_last_chunk_loses_nothing(tmp_path: Path) -> None:
    sample = shared("evtx-attack-samples", "Lateral Movement", "LM_Remote_Service02_7045.evtx")
    full = [e.record_id for e in read_events(str(sample)) if isinstance(e, Event)]
    events, problems, _ = _read_broken(tmp_path, sample.read_bytes()[:-700])
    assert [e.record_id for e in events] == full and not problems


def test_evtx_cut_at_a_chunk_boundary(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    data, spans = sample
    events, problems, _ = _read_broken(tmp_path, data[: 4096 + 65536])
    # later chunks are gone entirely: their records are bounded by the file header's next record number
    assert len(events) == spans[0][1] - spans[0][0] + 1
    assert _record_numbers(problems) == set(range(spans[1][0], spans[-1][1] + 1))
    assert len(problems) == spans[-1][1] - spans[0][1]


def test_corrupted_bytes_inside_a_chunk(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    data, spans = sample
    broken = bytearray(data)
    offset = 4096 + 65536 + 20000
    broken[offset : offset + 200] = b"\xff" * 200
    events, problems, _ = _read_broken(tmp_path, bytes(broken))
    got = {e.header_record_id for e in events}
    # the other chunks come out whole
    for k in (0, 2):
        assert set(range(spans[k][0], spans[k][1] + 1)) <= got
    lost = _record_numbers(problems)
    assert lost and lost <= set(range(spans[1][0], spans[1][1] + 1))
    assert len(events) + len(problems) == spans[-1][1] - spans[0][0] + 1  # exact accounting
    assert got.isdisjoint(lost)
    assert any("Failed to parse record" in p.reason for p in problems)


def test_corrupted_chunk_header(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    data, spans = sample
    broken = bytearray(data)
    broken[4096 + 65536 : 4096 + 65536 + 8] = b"XXXXXXXX"
    events, problems, _ = _read_broken(tmp_path, bytes(broken))
    assert {e.header_record_id for e in events} == set(range(spans[0][0], spans[0][1] + 1)) | set(
        range(spans[2][0], spans[-1][1] + 1)
    )
    assert _record_numbers(problems) == set(range(spans[1][0], spans[1][1] + 1))
    assert len(problems) == spans[1][1] - spans[1][0] + 1
    assert all("chunk 1" in p.reason for p in problems)


def test_evtx_with_broken_file_header(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    events, problems, path = _read_broken(tmp_path, data[:3000])
    assert events == [] and len(problems) == 1
    assert problems[0].position == "file" and "EVTX" in problems[0].reason


def test_broken_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"EventID": 7045, "Channel": "System", "ImagePath": "C:\\\\Users\\\\Public\\\\x.exe"}\n'
        '{"EventID": 7036, "Channel": "System"\n'  # cut short
        "\n"
        '{"EventID": 7036, "Channel": "System", "param1": "Spooler"}\n'
        '{"no": "event"}\n'
        "[1, 2]\n"
        "garbage\n"
    )
    events, problems = _split(list(read_events(str(path))))
    assert [e.line for e in events] == [1, 4]
    assert events[0].fields["ImagePathNormalised"] == "c:\\users\\public\\x.exe"
    assert [p.position for p in problems] == ["line 2", "line 5", "line 6", "line 7"]
    assert "invalid JSON" in problems[0].reason and "not a Windows event" in problems[1].reason


def test_first_line_broken_still_reads_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"EventID": 1, "Channel": \n{"EventID": 2, "Channel": "System"}\n')
    events, problems = _split(list(read_events(str(path))))
    assert [e.fields["EventID"] for e in events] == [2] and [e.line for e in events] == [2]
    assert [p.position for p in problems] == ["line 1"]


def test_overlong_line_is_refused_and_reading_goes_on(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(json_reader, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "events.jsonl"
    big = '{"EventID": 1, "Channel": "x", "CommandLine": "' + "A" * 5000 + '"}'
    path.write_text('{"EventID": 1, "Channel": "x"}\n' + big + '\n{"EventID": 3, "Channel": "x"}\n')
    events, problems = _split(list(read_events(str(path))))
    assert [e.line for e in events] == [1, 3]
    assert [(p.position, "longer than 1000" in p.reason) for p in problems] == [("line 2", True)]


def test_broken_object_between_pretty_printed_ones(tmp_path: Path) -> None:
    good = '{\n  "EventID": 7045,\n  "Channel": "System"\n}\n'
    path = tmp_path / "pretty.json"
    path.write_text(good + '{\n  "EventID": ,\n}\n' + good)
    events, problems = _split(list(read_events(str(path))))
    assert [e.line for e in events] == [1, 8]
    assert [p.position for p in problems] == ["line 5"]


def test_json_array_with_a_bad_item_and_a_broken_array(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text('[{"EventID": 1, "Channel": "a"}, {"x": 1}, {"EventID": 3, "Channel": "c"}]')
    events, problems = _split(list(read_events(str(path))))
    assert [e.line for e in events] == [1, 3] and [p.position for p in problems] == ["record 2"]
    path.write_text('[{"EventID": 1, "Channel": "a"}, {"EventID": ')
    events, problems = _split(list(read_events(str(path))))
    assert events == [] and [p.position for p in problems] == ["file"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"  \n\n", "no data"), (b"\x00\x01binary", "unrecognised format"),
     (b"MZ\x90\x00", "unrecognised format"), (b"PK\x05\x06" + b"\x00" * 18, "empty archive")],
)  # fmt: skip
def test_whole_file_problems(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    items = list(read_events(str(path)))
    assert len(items) == 1 and isinstance(items[0], Problem)
    assert items[0].position == "file" and reason in items[0].reason and items[0].source == str(path)


def test_folder_with_unreadable_entries(tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text('{"EventID": 7036, "Channel": "System"}\n')
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    (tmp_path / "loop").symlink_to(tmp_path)  # a folder that contains itself
    locked = tmp_path / "locked.jsonl"
    locked.write_text('{"EventID": 1, "Channel": "x"}\n')
    locked.chmod(0)
    items = list(iter_inputs([str(tmp_path), str(tmp_path / "absent")]))
    problems = {os.path.basename(p.source): p.reason for p in items if isinstance(p, Problem)}
    files = [os.path.basename(i.path) for i in items if isinstance(i, InputFile)]
    assert problems["dangling"] == "broken symbolic link"
    assert "not a regular file" in problems["pipe"]
    assert "cannot read" in problems["absent"]
    assert "good.jsonl" in files
    if os.geteuid() == 0:  # root reads anything: the permission case cannot be made here
        assert "locked.jsonl" in files
    else:
        assert "permission denied" in problems["locked.jsonl"]
    events, _ = _split(list(iter_events([str(tmp_path)])))
    assert events and all(e.source.endswith(".jsonl") for e in events)


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)


LINE = b'{"EventID": 7036, "Channel": "System", "param1": "Spooler"}\n'


def test_zip_members_unsafe_names_and_nesting(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner.jsonl", LINE)
    deeper = io.BytesIO()
    with zipfile.ZipFile(deeper, "w") as zf:
        zf.writestr("level2.zip", inner.getvalue())
    archive = tmp_path / "a.zip"
    _zip(archive, {
        "ok.jsonl": LINE * 2,
        "../escape.jsonl": LINE,
        "/etc/abs.jsonl": LINE,
        "C:/Windows/x.jsonl": LINE,
        "dir/nested.zip": inner.getvalue(),
        "dir/nested.jsonl.gz": gzip.compress(LINE),
        "deep.zip": deeper.getvalue(),
        "empty.jsonl": b"",
    })  # fmt: skip
    events, problems = _split(list(read_events(str(archive))))
    assert sorted({e.source for e in events}) == [
        f"{archive}!dir/nested.jsonl.gz",
        f"{archive}!dir/nested.zip!inner.jsonl",
        f"{archive}!ok.jsonl",
    ]
    assert len(events) == 4
    by_position = {p.position: p for p in problems if p.source == str(archive)}
    for name in ("../escape.jsonl", "/etc/abs.jsonl", "C:/Windows/x.jsonl"):
        assert "refused" in by_position[f"member {name}"].reason
    deep = [p for p in problems if "nested deeper" in p.reason]
    assert len(deep) == 1 and deep[0].source == f"{archive}!deep.zip"
    empty = [p for p in problems if p.source == f"{archive}!empty.jsonl"]
    assert [p.reason for p in empty] == ["empty file"]
    assert len(problems) == 5
    assert not (tmp_path.parent / "escape.jsonl").exists()


def test_zip_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "bomb.zip"
    _zip(archive, {"small.jsonl": LINE, "bomb.jsonl": LINE * 200_000})  # ~12 MB that deflates to ~30 KB
    monkeypatch.setattr(archives, "RATIO_MIN_BYTES", 1024 * 1024)
    events, problems = _split(list(read_events(str(archive))))
    assert [(p.source, p.position) for p in problems] == [(str(archive), "member bomb.jsonl")]
    assert "ratio" in problems[0].reason and len(events) == 1
    # a cap on total size stops even a member whose declared size would pass
    monkeypatch.setattr(archives, "RATIO_MIN_BYTES", 100 * 1024**2)
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 2 * 1024 * 1024)
    events, problems = _split(list(read_events(str(archive))))
    assert [p.position for p in problems] == ["member bomb.jsonl"] and "exceeds" in problems[0].reason


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(LINE * 200_000))
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 1536 * 1024)
    events, problems = _split(list(read_events(str(path))))
    assert len(problems) == 1 and problems[0].position == "file" and "exceeds" in problems[0].reason
    assert 0 < len(events) < 200_000  # what came before the cap is kept
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 2 * 1024**3)
    monkeypatch.setattr(archives, "RATIO_MIN_BYTES", 512 * 1024)
    monkeypatch.setattr(archives, "MAX_RATIO", 20)
    events, problems = _split(list(read_events(str(path))))
    assert len(problems) == 1 and "ratio" in problems[0].reason


def test_gzip_json_lines_and_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "events.gz"
    data = gzip.compress(LINE * 3000)
    path.write_bytes(data)
    events, problems = _split(list(read_events(str(path))))
    assert len(events) == 3000 and not problems and {e.source for e in events} == {str(path)}
    cut = data[: len(data) // 2]
    path.write_bytes(cut)
    available = zlib.decompressobj(wbits=31).decompress(cut)  # what the cut file still holds
    events, problems = _split(list(read_events(str(path))))
    # every complete line before the cut is read; the cut (from the last line break on) is reported
    assert 0 < len(events) == available.count(b"\n") < 3000
    assert [p.position for p in problems] == ["file"]
    assert "end marker" in problems[0].reason and f"after {len(available)} bytes is lost" in problems[0].reason


def test_concatenated_gzip_members_are_all_read(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl.gz"
    path.write_bytes(gzip.compress(LINE * 10) + gzip.compress(LINE * 5) + b"\0" * 64)
    events, problems = _split(list(read_events(str(path))))
    assert len(events) == 15 and problems == []


def test_gzip_bomb_is_stopped_early_against_the_bytes_consumed(tmp_path: Path) -> None:
    """The ratio is checked against the compressed bytes read so far: a bomb inside a large file (here
    padded with a long tail member) is refused after a few MiB of output, not after the total cap."""
    path = tmp_path / "bomb.jsonl.gz"
    bomb = gzip.compress(b"\n" * (64 * 1024**2), compresslevel=9)  # 64 MiB of blank lines, ~64 KiB
    tail = gzip.compress(os.urandom(4 * 1024**2))  # incompressible: makes the file look harmless
    path.write_bytes(bomb + tail)
    events, problems = _split(list(read_events(str(path))))
    assert events == [] and len(problems) == 1 and "ratio" in problems[0].reason
    produced = int(problems[0].reason.split(" after ")[1].split()[0])
    assert produced < 2 * archives.RATIO_MIN_BYTES


def test_corrupt_zip_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    items = list(read_events(str(path)))
    assert len(items) == 1 and isinstance(items[0], Problem) and "not a readable zip" in items[0].reason
