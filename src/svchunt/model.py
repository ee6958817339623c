"""The data every stage passes on: normalised events, problems met while reading, signals and alerts.

Kept deliberately small and dependency-free so that sources, engine, correlator, outputs and the
real-time mode all speak the same language.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

LEVELS = ("informational", "low", "medium", "high", "critical")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


@dataclass(slots=True)
class Event:
    """One Windows event in the normalised form.

    `fields` uses Sigma's Windows field names: `EventID` (int), `Channel`, `Provider_Name`, `Computer`,
    `EventRecordID`, and the event-data fields under their own names (`Image`, `CommandLine`,
    `ServiceName`, `ImagePath`, ...). Values are `str`, `int` or `None`. Derived fields added during
    normalisation (for example `ImagePathNormalised`) live there too.

    `timestamp` is ISO 8601 UTC with fixed width (`2019-03-19T00:41:29.008000Z`) so that it sorts as text.
    `source` is the input path as given, or `archive.zip!member`. `record_id` is the EventRecordID
    (what Event Viewer shows) or the shape's record number; `line` is the JSON line number (1-based) or
    None for EVTX; `header_record_id` is the EVTX record-header number, kept as extra provenance.
    """

    fields: dict[str, Any]
    timestamp: str | None
    source: str
    record_id: int | None = None
    line: int | None = None
    header_record_id: int | None = None
    # The record's JSON text as the EVTX parser wrote it, where it holds the record's values as they are
    # (`normalise.shapes.route_record`): the matcher's keyword scan asks it first (`engine.json_keywords`).
    # Read while the event is matched, never stored with it.
    text: str | None = field(default=None, compare=False, repr=False)

    @property
    def event_id(self) -> int | None:
        value = self.fields.get("EventID")
        return value if isinstance(value, int) else None

    @property
    def channel(self) -> str | None:
        return self.fields.get("Channel")

    @property
    def computer(self) -> str | None:
        return self.fields.get("Computer")

    @property
    def position(self) -> str:
        """Where the record is in its source, as problems name it."""
        if self.line is not None:
            return f"line {self.line}"
        return f"record {self.header_record_id if self.header_record_id is not None else self.record_id}"


def field_dict(fields: Any) -> dict[str, Any]:
    """An event's fields as a dict: a hunt's matched events keep theirs on disk (`engine.spool.StoredFields`),
    which JSON writers cannot take as it is."""
    if type(fields) is dict:
        return fields
    to_dict = getattr(fields, "to_dict", None)
    return to_dict() if to_dict is not None else dict(fields)


# The normalised event's list of changes made to fit hostile values within bounds (normalise/bounds.py).
FLAGS_FIELD = "svchunt_flags"
KEPT_PREFIX = "kept with changes: "


class Unrouted:
    """What a reader gives, when asked to (a hunt's `route`), for records it read but did not pass on: no
    loaded rule can match them (none meets their channel and EventID, or none of the needs of their
    group's rules holds in their fields), and normalising them could not have flagged anything
    (`normalise.shapes.route_record`). `count` records, counted as read; given once per file or range
    rather than once per record, as most records of a hunt are such."""

    __slots__ = ("count",)

    def __init__(self, count: int = 1):
        self.count = count

    def __repr__(self) -> str:
        return f"Unrouted({self.count})"


class RecordSkip(Protocol):
    """How a reader tells that no rule of a record's group can match the record (True: count it only).

    `normalised` False: asked with the record's raw EventData (a flat dict of scalars, or None), before
    normalising; True: asked with the normalised fields, where only they can say (derived or header fields,
    keywords over every value). `text`: the record's JSON text as the EVTX parser wrote it, for keywords
    (`engine.json_keywords`), given only where it holds the record's values as they are (`Event.text`)."""

    normalised: bool

    def __call__(self, fields: dict[str, Any] | None, text: str | None = None) -> bool: ...


# For a (lower-cased channel, EventID): how a reader may tell that no rule can match a record
# (`engine.matcher.Matcher.record_filter`), or None when only matching can.
RouteTest = Callable[[tuple[str | None, int | None]], RecordSkip | None]


@dataclass(slots=True, frozen=True)
class Problem:
    """A record or file that could not be read: reported, counted, never silently dropped.

    `kept` marks a record that was read and evaluated, but with values changed to fit the event bounds
    (a timestamp out of range, a number wider than 64 bits, nesting too deep): flagged, not skipped.
    """

    source: str
    position: str  # "record 12", "line 7", "chunk 3", "member ../x", "file"
    reason: str
    kept: bool = False

    def __post_init__(self) -> None:
        # Written as text (a case file, a Spark task's rows), a problem keeps only its reason: a kept one says
        # so there, so that `from_row` reads it back as kept, whatever made it.
        if self.kept and not self.reason.startswith(KEPT_PREFIX):
            object.__setattr__(self, "reason", KEPT_PREFIX + self.reason)

    @property
    def whole_file(self) -> bool:
        """A file or archive member left out as a whole, rather than one record of it."""
        return not self.kept and (self.position == "file" or self.position.startswith("member "))

    @classmethod
    def flagged(cls, event: Event) -> Problem:
        """The report of an event whose values were changed to fit the bounds (its FLAGS_FIELD)."""
        flags = event.fields.get(FLAGS_FIELD)
        reason = "; ".join(flags) if isinstance(flags, list) else str(flags)
        return cls(event.source, event.position, f"{KEPT_PREFIX}{reason}", kept=True)

    @classmethod
    def from_row(cls, source: str, position: str, reason: str) -> Problem:
        """A problem written as (source, position, reason) text, e.g. by a Spark task or in a case file."""
        return cls(source, position, reason, kept=reason.startswith(KEPT_PREFIX))


@dataclass(slots=True, frozen=True)
class Evidence:
    source: str
    record_id: int | None
    event_id: int | None
    channel: str | None
    timestamp: str | None = None
    line: int | None = None
    header_record_id: int | None = None

    @classmethod
    def of(cls, event: Event) -> Evidence:
        return cls(
            source=event.source,
            record_id=event.record_id,
            event_id=event.event_id,
            channel=event.channel,
            timestamp=event.timestamp,
            line=event.line,
            header_record_id=event.header_record_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The evidence part of the alert document (`svchunt.outputs.document.EVIDENCE_FIELDS`)."""
        from svchunt.outputs.document import evidence_document

        return evidence_document(self)


@dataclass(slots=True, frozen=True)
class RuleInfo:
    """What an alert needs to know about the rule that raised it."""

    rule_id: str
    title: str
    level: str = "medium"
    tags: tuple[str, ...] = ()
    # `covers`: the items the coverage table counts for this rule (claims + contributes_to).
    # `claims`: the items an alert of this rule asserts happened (what analysts read as the verdict).
    # `contributes_to`: items this rule is only a building block of (e.g. an input of a correlation).
    covers: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    contributes_to: tuple[str, ...] = ()
    name: str | None = None  # Sigma `name:` — correlations may reference rules by it
    description: str = ""
    falsepositives: tuple[str, ...] = ()
    path: str | None = None

    @property
    def techniques(self) -> list[str]:
        """ATT&CK technique ids from tags such as `attack.t1543.003` → `T1543.003`."""
        return list(_techniques(tuple(self.tags)))


@functools.lru_cache(maxsize=4096)
def _techniques(tags: tuple[str, ...]) -> tuple[str, ...]:
    # Read for every alert by incidents and outputs, and a rule's tags never change: worked out once per rule.
    out = []
    for tag in tags:
        low = tag.lower()
        if low.startswith("attack.t") and low[8:9].isdigit():
            out.append(tag[7:].upper())
    return tuple(out)


def item_fields(
    covers: object, claims: object, contributes_to: object
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(covers, claims, contributes_to) from a rule's custom attributes.

    A rule that declares only `covers:` (older content, users' own rules) claims what it covers.
    `covers` is always the union, so the coverage table counts building blocks too.
    """

    def as_tuple(value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value)
        return (str(value),)

    cov, cla, con = as_tuple(covers), as_tuple(claims), as_tuple(contributes_to)
    if claims is None and contributes_to is None:
        cla = cov
    union = tuple(dict.fromkeys(cov + cla + con))
    return union, cla, con


@dataclass(slots=True)
class Signal:
    """One rule matched one event: what the correlator consumes."""

    rule: RuleInfo
    event: Event


class _NoValues(dict):
    """The empty `group`/`extra` that most alerts (plain detections) share: a dict to every reader, and
    never changed (each change raises), so sharing it cannot carry one alert's values into another. Two
    empty dicts per alert are 128 bytes, a tenth of what a big hunt holds per alert."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("an alert's shared empty group/extra cannot be changed: give the alert a new dict")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_no_values, ())  # unpickled (sent between processes) as the shared one again


NO_VALUES: dict[str, Any] = _NoValues()


def _no_values() -> dict[str, Any]:
    return NO_VALUES


@dataclass(slots=True)
class Alert:
    rule: RuleInfo
    timestamp: str | None
    computer: str | None
    evidence: list[Evidence]
    fields: dict[str, Any]
    kind: str = "detection"  # "detection" | "correlation" | "baseline"
    group: dict[str, Any] = field(default_factory=_no_values)  # correlation group-by values
    extra: dict[str, Any] = field(default_factory=_no_values)

    @property
    def alert_id(self) -> str:
        """Deterministic: the same rule on the same evidence always gives the same id."""
        key = [self.rule.rule_id, self.kind] + [
            (e.source, e.record_id, e.line, e.header_record_id) for e in self.evidence
        ]
        return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]

    def sort_key(self) -> tuple:
        first = self.evidence[0] if self.evidence else None
        return (
            self.timestamp or "",
            self.computer or "",
            self.rule.rule_id,
            first.source if first else "",
            (first.record_id or 0) if first else 0,
            (first.line or 0) if first else 0,
        )

    def to_dict(self) -> dict[str, Any]:
        """The alert document every output writes: defined once, in `svchunt.outputs.document`."""
        from svchunt.outputs.document import to_document

        return to_document(self)


def alert_from_signal(signal: Signal) -> Alert:
    event = signal.event
    return Alert(
        rule=signal.rule,
        timestamp=event.timestamp,
        computer=event.computer,
        evidence=[Evidence.of(event)],
        # Shared, not copied: a normalised event's fields are never changed after normalisation, and an
        # event that many rules match would otherwise be held once per alert (memory grows with alerts).
        fields=event.fields,
    )


@dataclass(slots=True, frozen=True)
class Refusal:
    """A rule the engine will not run, and why: listed, never dropped silently."""

    path: str
    rule_id: str | None
    title: str | None
    reason: str


@dataclass(slots=True)
class RunStats:
    files: int = 0
    records_read: int = 0
    records_skipped: int = 0
    records_flagged: int = 0  # read and evaluated, with values changed to fit the event bounds
    files_skipped: int = 0  # whole files or archive members that could not be read at all
    records_matched: int = 0  # events that matched at least one rule
    rules_loaded: int = 0
    correlations_loaded: int = 0
    seconds: float = 0.0

    def count_problems(self, problems: list[Problem]) -> None:
        """Files skipped, records skipped and records flagged, from the problems of a run."""
        self.files_skipped = sum(1 for p in problems if p.whole_file)
        self.records_flagged = sum(1 for p in problems if p.kept)
        self.records_skipped = len(problems) - self.files_skipped - self.records_flagged


@dataclass(slots=True)
class HuntResult:
    alerts: list[Alert]
    stats: RunStats
    problems: list[Problem]
    refused: list[Refusal]
    notes: list[str] = field(default_factory=list)  # e.g. "first run on host X: baseline only"
