"""Incidents as JSON Lines (`--incidents F`): one incident per line, most severe first."""

from __future__ import annotations

from pathlib import Path

import orjson

from svchunt.correlate.incidents import Incident

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def write_incidents(incidents: list[Incident], path: str) -> int:
    """Write the incidents in their order (level, then start); returns the number of lines."""
    with Path(path).open("wb") as out:
        for inc in incidents:
            out.write(orjson.dumps(inc.to_dict(), option=_OPTS, default=str))
    return len(incidents)
