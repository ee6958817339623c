"""Outputs of the alerts alone (JSON lines, CSV) are written by a forked copy while the hunt builds the
incidents (cli/side_writer.py): the same bytes as written in the process, and a file that cannot be written
is one clear message, whichever side wrote it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from svchunt.cli import side_writer
from svchunt.cli.side_writer import OutputJob, SideWriter

EXAMPLES = REPO / "examples"


def test_forked_and_in_process_outputs_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from svchunt.cli.main import cli

    runs = {}
    for name, fork in (("forked", True), ("inline", False)):
        out = tmp_path / name
        out.mkdir()
        monkeypatch.setattr(side_writer, "_can_fork", lambda fork=fork: fork)
        result = CliRunner().invoke(cli, ["hunt", str(EXAMPLES), "-q", "--jsonl", str(out / "a.jsonl"), "--csv", str(out / "a.csv")])
        assert result.exit_code == 0, result.output
        runs[name] = out
    for file in ("a.jsonl", "a.csv"):
        forked, inline = (runs["forked"] / file).read_bytes(), (runs["inline"] / file).read_bytes()
        assert forked and forked == inline, file
    assert len((runs["forked"] / "a.jsonl").read_bytes().splitlines()) >= 10


@pytest.mark.parametrize("flag", ["--jsonl", "--csv", "--html", "--incidents"])
def test_an_output_that_cannot_be_written_is_one_message(tmp_path: Path, flag: str) -> None:
    missing = tmp_path / "no such folder" / "out.file"
    r = subprocess.run(
        [sys.executable, "-m", "svchunt.cli.main", "hunt", str(EXAMPLES), "-q", flag, str(missing)],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "cannot write" in r.stderr and str(missing) in r.stderr and "No such file or directory" in r.stderr


def test_the_copy_reports_its_first_error_and_the_process_goes_on(tmp_path: Path) -> None:
    written = tmp_path / "ok.txt"

    def fail() -> None:
        raise OSError(28, "No space left on device")

    jobs = [OutputJob("first", str(written), lambda: written.write_text("x")), OutputJob("second", "/full/disk", fail)]
    side = SideWriter(jobs).start()
    assert side._pid is not None, "forked (a test process runs one thread)"
    with pytest.raises(Exception) as caught:
        side.wait()
    assert "cannot write second to /full/disk: No space left on device" in str(caught.value.format_message())
    assert written.read_text() == "x", "the jobs before the failing one were written"
    quiet = SideWriter([OutputJob("second", "/full/disk", fail)]).start()
    quiet.wait(report=False)  # the process is failing already: nothing more raised


def test_without_fork_the_jobs_run_in_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(side_writer, "_can_fork", lambda: False)
    seen: list[int] = []
    side = SideWriter([OutputJob("n", "-", lambda: seen.append(os.getpid()))]).start()
    assert seen == [] and side._pid is None
    side.wait()
    assert seen == [os.getpid()]
