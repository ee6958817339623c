"""Outputs that need only the alerts (JSON lines, CSV), written by a forked copy of the process while the
process itself builds the incidents and the outputs that need them: on a hunt with 10^4-10^5 alerts both
take about as long, and the second core is idle once the workers are done.

The copy shares the alerts copy-on-write (frozen for the garbage collector, so its pages stay shared) and
reads matched events' fields from the spool file by offset (`os.pread`), as the process does. Where there is
no fork (Windows), or the process runs other threads (a fork copies only the calling one), the writes run
in the process, one after the other: the same files either way.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class OutputJob:
    label: str  # as the terminal summary names the file: "alerts (JSON lines)"
    path: str
    write: Callable[[], object]


def output_error(label: str, path: str, exc: OSError) -> click.ClickException:
    """One line naming the file and the reason, not a traceback after a finished hunt."""
    return click.ClickException(f"cannot write {label} to {path}: {exc.strerror or exc}")


def run_job(job: OutputJob) -> object:
    """The job's own result; an OSError as `output_error`."""
    try:
        return job.write()
    except OSError as exc:
        raise output_error(job.label, job.path, exc) from None


def _message(exc: BaseException) -> str:
    from svchunt.engine.spool import SpoolError

    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, SpoolError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class SideWriter:
    """Starts the jobs in a forked copy (`start`), and `wait` gives their outcome: the first job's error as a
    ClickException, raised here as if the job had run in the process."""

    def __init__(self, jobs: list[OutputJob]):
        self.jobs = jobs
        self._pid: int | None = None
        self._errors: int | None = None

    def start(self) -> SideWriter:
        if not self.jobs or not _can_fork():
            return self
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the copy: write, report, and leave without the process's exit handlers
            os.close(read_end)
            code = 0
            try:
                for job in self.jobs:
                    run_job(job)
            except BaseException as exc:  # noqa: BLE001 - reported to the process, which raises it
                message = _message(exc)
                os.write(write_end, message.encode("utf-8", "replace"))
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        self._pid, self._errors = pid, read_end
        return self

    def wait(self, report: bool = True) -> None:
        """`report` False: the process is failing already; the copy is waited for, its outcome let go."""
        if self._pid is None:
            if report:
                for job in self.jobs:  # no copy was started: the jobs run here, now
                    run_job(job)
            return
        pid, read_end = self._pid, self._errors
        self._pid = self._errors = None
        chunks = []
        with os.fdopen(read_end, "rb") as pipe:  # type: ignore[arg-type]
            while chunk := pipe.read(65536):
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        if status != 0 and report:
            message = b"".join(chunks).decode("utf-8", "replace")
            raise click.ClickException(message or f"the output writer stopped ({os.waitstatus_to_exitcode(status)})")
