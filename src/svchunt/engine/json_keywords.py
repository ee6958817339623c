"""Keyword literals looked for in an EVTX record's JSON text, before the record is normalised.

A Sigma keyword searches every value of an event. Where a group's rules include a keyword rule (SigmaHQ's
`Mimikatz Use` meets every event of every log), the only exact answer from the fields is the joined,
lower-cased text of all values: building it costs more than parsing the record. The parser's JSON text
holds every value the normalised event gets from the record (EventData, the System part's Channel,
Computer, Provider and numbers), so a literal that occurs in none of them does not occur in that text
either, once the literal is written as the JSON writer writes it. Hyperscan answers that in one pass.

Sound only where every condition holds, else the caller keeps the exact test (`values.keyword_text`):
- the literal is printable ASCII, and holds a character no number, true/false or null text has: it can then
  occur only within a text value, whose JSON form is the value with `\\` and `"` escaped character by
  character (the EVTX parser writes non-ASCII as UTF-8, and escapes only those two and control characters);
- the text has no `\\u` or `\\/` escape (another writer's spelling of a character) and neither of the two
  characters whose lower case holds an ASCII letter (İ, the Kelvin sign): Hyperscan folds ASCII only,
  `str.lower` all of Unicode;
- the values are the record's own (the caller's part): no derived field, flat EventData (see
  `normalise.shapes.route_record`).
"""

from __future__ import annotations

from collections.abc import Iterable

try:
    import hyperscan
except ImportError:  # an optional speed-up: without it every keyword test is the exact one
    hyperscan = None

# Every character of the text of a number (JSON's or Python's: 1e+20, inf, nan), true, false or null.
_NUMBER_TEXT = frozenset("0123456789+-.eEinfaINFAtrulsTRULSoO")
# Spellings that make the JSON text differ from the values other than by `\\` and `"` escapes: an escape
# `\\u` or `\\/` (an odd run of backslashes before it), İ (U+0130) and the Kelvin sign (U+212A) in UTF-8.
_UNSURE = (rb"(?:^|[^\\])(?:\\\\)*\\[u/]", rb"\xc4\xb0", rb"\xe2\x84\xaa")
MAX_DATABASES = 256


def json_safe(literal: str) -> bool:
    """Whether `literal` (lower-cased) can be looked for in JSON text as described above."""
    return (
        bool(literal)
        and all(" " <= c <= "~" for c in literal)
        and not _NUMBER_TEXT.issuperset(literal)
    )


def _pattern(literal: str) -> bytes:
    escaped = literal.replace("\\", "\\\\").replace('"', '\\"').encode("ascii")
    return b"".join(b"\\x%02x" % byte for byte in escaped)


def _stop(*_: object) -> bool:
    return True  # the first match answers: stop the scan


class JsonKeywords:
    """Whether some literal of a set may occur in the values of a record, asked of its JSON text."""

    __slots__ = ("_database", "_scratch")

    def __init__(self, literals: Iterable[str]):
        literal_patterns = [_pattern(lit) for lit in sorted(set(literals))]
        expressions = [*literal_patterns, *_UNSURE]
        caseless = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
        flags = [caseless] * len(literal_patterns) + [hyperscan.HS_FLAG_SINGLEMATCH] * len(_UNSURE)
        self._database = hyperscan.Database()
        self._database.compile(
            expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
        )
        # one scan at a time: a reader asks record by record, and a worker process has one reader
        self._scratch = hyperscan.Scratch(self._database)

    def absent(self, text: str) -> bool:
        """True when no literal occurs in `text` and nothing in it makes the answer unsure."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return False  # a lone surrogate: not a text the parser writes; the exact test decides
        try:
            self._database.scan(data, match_event_handler=_stop, scratch=self._scratch)
        except hyperscan.ScanTerminated:
            return False
        return True


_DATABASES: dict[tuple[str, ...], JsonKeywords] = {}


def json_keywords(literals: Iterable[str]) -> JsonKeywords | None:
    """The test for these (lower-cased) keyword literals, or None where it cannot stand in for the exact
    one (no Hyperscan, or a literal that is not `json_safe`). Groups share their keyword rules: one
    database per set of literals."""
    if hyperscan is None:
        return None
    key = tuple(sorted(set(literals)))
    if not key or not all(json_safe(lit) for lit in key):
        return None
    found = _DATABASES.get(key)
    if found is None:
        if len(_DATABASES) >= MAX_DATABASES:
            _DATABASES.clear()
        found = _DATABASES[key] = JsonKeywords(key)
    return found
