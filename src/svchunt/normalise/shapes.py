"""One Windows event in any of the JSON shapes we read -> a flat dict with Sigma's Windows field names.

Shapes:
- `nested`: `{"Event": {"System": ..., "EventData"|"UserData": ...}}`, as the evtx parser renders XML.
- `wrapped`: evtx's own record `{"event_record_id", "timestamp", "data": {"Event": ...}}` (data may be a
  JSON string).
- `flat`: NXLog / HELK (`EventID`, `Channel`, `Hostname`, `SourceName`, `RecordNumber`, `@timestamp`,
  event data at top level).
- `ecs`: Winlogbeat (`winlog.event_id`, `winlog.channel`, ... as nested objects or dotted keys).

Every shape gives the same fields for the same event: `EventID` (int), `Channel`, `Provider_Name`,
`Computer`, `EventRecordID` (int, when known) and the event-data fields under their own names; derived
fields come from derived.py. Values keep their JSON scalar type; lists of scalars stay lists; any other
nested value becomes compact JSON text. The hot path is one pass over the event data, no regex.
"""

from __future__ import annotations

from typing import Any

import orjson

from svchunt.model import RecordSkip, RouteTest
from svchunt.normalise import bounds
from svchunt.normalise.bounds import MAX_DEPTH, nested_text
from svchunt.normalise.derived import add_derived
from svchunt.normalise.timestamps import normalise_timestamp
from svchunt.values import parse_number

NESTED = "nested"
WRAPPED = "wrapped"
FLAT = "flat"
ECS = "ecs"

_SCALARS = frozenset({str, int, float, bool, type(None)})

# NXLog im_msvistalog header fields and HELK/Logstash additions: everything else at top level is event data.
FLAT_METADATA = frozenset(
    {
        "EventID", "Channel", "Hostname", "SourceName", "RecordNumber", "@timestamp", "EventTime",
        "EventReceivedTime", "host", "port", "tags", "@version", "Keywords", "SeverityValue", "Severity",
        "EventType", "ProviderGuid", "OpcodeValue", "Opcode", "Version", "Task", "Category", "ThreadID",
        "ExecutionProcessID", "SourceModuleName", "SourceModuleType", "Message", "ActivityID",
        "RelatedActivityID", "UserID", "AccountType", "type", "beat", "log_name", "source_name",
    }
)  # fmt: skip
# NXLog resolves System/Security@UserID into AccountName/Domain (flagged by AccountType); 7045 has its own
# AccountName in the event data, which is the one NXLog keeps there.
_RESOLVED_ACCOUNT = ("AccountName", "Domain")


# NXLog's EventType header values; anything else under that name is event data (Sysmon registry events).
_NXLOG_EVENT_TYPES = frozenset(
    {"INFO", "AUDIT_SUCCESS", "AUDIT_FAILURE", "WARNING", "ERROR", "CRITICAL", "VERBOSE", "DEBUG"}
)


class NotAnEvent(ValueError):
    """A JSON value that is not a Windows event in any shape we know."""


def detect_shape(record: Any) -> str | None:
    if type(record) is not dict:
        return None
    if "Event" in record:
        return NESTED
    if "data" in record and "event_record_id" in record:
        return WRAPPED
    if "winlog" in record or "winlog.event_id" in record or "winlog.channel" in record:
        return ECS
    if "EventID" in record:
        return FLAT
    return None


def _value(value: Any, out: dict[str, Any], key: str) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list and all(type(item) in _SCALARS for item in value):
        return value
    if kind is dict and "#text" in value and all(k in ("#text", "#attributes") for k in value):
        return _value(value["#text"], out, key)
    return nested_text(value, out, key)


def _unnamed_data(value: Any, out: dict[str, Any]) -> Any:
    """Unnamed `<Data>` elements: a string stays a string, several become a list of strings."""
    if type(value) is dict:
        if "#text" not in value:
            return nested_text(value, out, "Data")
        value = value["#text"]
    if type(value) is list:
        return [item if type(item) is str else _text(item, out) for item in value]
    return value if type(value) in _SCALARS else nested_text(value, out, "Data")


def _text(value: Any, out: dict[str, Any]) -> str:
    if value is None:
        return ""
    if type(value) in _SCALARS:
        return str(value)
    return nested_text(value, out, "Data")


def _add_event_data(data: Any, out: dict[str, Any]) -> None:
    if type(data) is not dict:
        if data is not None:
            out["Data"] = _unnamed_data(data, out)
        return
    for key, value in data.items():
        if key == "Data" or key == "#text":
            out["Data"] = _unnamed_data(value, out)
        elif type(value) in _SCALARS:
            out[key] = value
        elif key != "#attributes":
            out[key] = _value(value, out, key)


def _add_leaves(node: dict[str, Any], out: dict[str, Any], depth: int = 0) -> None:
    if depth >= MAX_DEPTH:  # iterative callers would be safer, but real UserData is 2-3 levels deep
        out["UserData"] = nested_text(node, out, "UserData")
        return
    for key, value in node.items():
        if key == "#attributes":
            continue
        if type(value) is dict and "#text" not in value:
            _add_leaves(value, out, depth + 1)
        else:
            out[key] = _value(value, out, key)


def _add_user_data(data: Any, out: dict[str, Any]) -> None:
    """`UserData` holds one provider-defined element; its leaf values become fields by element name."""
    if type(data) is not dict:
        if data is not None:
            out["UserData"] = _value(data, out, "UserData")
        return
    for key, child in data.items():
        if key == "#attributes":
            continue
        if type(child) is dict:
            _add_leaves(child, out)
        else:
            out[key] = _value(child, out, key)


def _attribute(node: Any, name: str) -> Any:
    if type(node) is dict:
        attributes = node.get("#attributes")
        if type(attributes) is dict:
            return attributes.get(name)
    return None


def _finish(
    out: dict[str, Any],
    raw_event_id: Any,
    channel: Any,
    provider: Any,
    computer: Any,
    record_id: Any,
    parsed: bool = False,
) -> int | None:
    """Header fields in their normalised types, every value within bounds (bounds.py), derived fields.

    `parsed`: the values come from the EVTX parser, whose types already fit the bounds (text within a
    64 KiB chunk, integers of at most 64 bits, nesting cut by `_value`): the per-value pass is skipped.
    """
    event_id = raw_event_id if type(raw_event_id) is int and 0 <= raw_event_id <= bounds.MAX_EVENT_ID else None
    if event_id is None:
        if raw_event_id is None or raw_event_id == "":
            raise NotAnEvent("no EventID")
        # EventID with Qualifiers: {"#attributes": {...}, "#text": 7045}
        value = raw_event_id.get("#text") if type(raw_event_id) is dict else raw_event_id
        if not bounds.numeric(value):
            raise NotAnEvent(f"EventID {bounds.quote(raw_event_id)} is not a number")
        event_id = bounds.event_id(value, out)
    out["EventID"] = bounds.as_text(raw_event_id) if event_id is None else event_id
    out["Channel"] = channel if type(channel) is str else bounds.name_text(channel, "Channel", out)
    out["Provider_Name"] = provider if type(provider) is str else bounds.name_text(provider, "Provider", out)
    out["Computer"] = computer if type(computer) is str else bounds.name_text(computer, "Computer", out)
    rid = record_id if type(record_id) is int and 0 <= record_id <= bounds.INT64_MAX else None
    if rid is None and record_id is not None:
        rid = bounds.record_number(record_id, out)
        out["EventRecordID"] = bounds.as_text(record_id) if rid is None else rid
    elif rid is not None:
        out["EventRecordID"] = rid
    if not parsed:
        bounds.bound_fields(out)
    add_derived(out)
    return rid


def _timestamp(out: dict[str, Any], raw: Any) -> str | None:
    """Normalised time of a given raw value; an unusable one is flagged (the event is kept, without time)."""
    if raw is None or raw == "":
        return None
    timestamp = normalise_timestamp(raw)
    if timestamp is None:
        bounds.flag_timestamp(out, raw)
    return timestamp


def from_nested(record: dict[str, Any], parsed: bool = False) -> tuple[dict[str, Any], str | None, int | None]:
    """`{"Event": {...}}` -> (fields, timestamp, EventRecordID). Hot path for EVTX: keep it lean.

    `parsed` is True only for records straight from the EVTX parser (see `_finish`)."""
    event = record.get("Event")
    if type(event) is not dict:
        raise NotAnEvent("`Event` is not an object")
    system = event.get("System")
    if type(system) is not dict:
        raise NotAnEvent("no `Event.System`")
    data = event.get("EventData")
    if _flat(data):  # the parsed dict is ours: reused as the fields
        out: dict[str, Any] = data
    else:
        out = {}
        if data is not None:
            _add_event_data(data, out)
    if "UserData" in event:
        _add_user_data(event["UserData"], out)
    if "ProcessingErrorData" in event:
        _add_event_data(event["ProcessingErrorData"], out)
    provider, stamp = _provider_and_time(system)
    timestamp = stamp if _usual_time(stamp) else _timestamp(out, stamp)
    rid = _finish(
        out, _event_id(system), system.get("Channel"), provider, system.get("Computer"), system.get("EventRecordID"),
        parsed,
    )  # fmt: skip
    return out, timestamp, rid


# The readings of System and EventData that `from_nested` and `route_record` share: a record is skipped only
# where normalising would have read it the same way and taken the fast path.


def _flat(data: Any) -> bool:
    """The usual EventData: named Data with scalar values only, already flat (types checked in C)."""
    return type(data) is dict and _SCALARS.issuperset(map(type, data.values())) and "#text" not in data


def _event_id(system: dict[str, Any]) -> Any:
    event_id = system.get("EventID")
    if type(event_id) is dict:  # EventID with Qualifiers: {"#attributes": {...}, "#text": 7045}
        return event_id.get("#text")
    return event_id


def _provider_and_time(system: dict[str, Any]) -> tuple[Any, Any]:
    """The provider's Name and TimeCreated's SystemTime, None where the shape has no such value."""
    try:
        provider = system["Provider"]["#attributes"]["Name"]
    except (KeyError, TypeError):
        provider = None
    try:
        stamp = system["TimeCreated"]["#attributes"]["SystemTime"]
    except (KeyError, TypeError):
        stamp = None
    return provider, stamp


def _usual_time(stamp: Any) -> bool:
    """SystemTime as the parser writes it (`2019-07-19T14:42:51.446280Z`): already our normalised form."""
    return type(stamp) is str and len(stamp) == 27 and stamp[26] == "Z" and stamp[10] == "T"


def route_record(record: Any, route: RouteTest, text: str) -> tuple[bool | RecordSkip | None, bool]:
    """How a hunt reads an EVTX parser record (`text`, its JSON, parsed as `record`), and whether `text`
    holds the values normalising gives it as they are (bar derived fields: see `model.Event.text`).

    The verdict: True, count it without normalising it; None, normalise it; a `RecordSkip`, normalise it
    and then ask that whether its fields can match (a `normalised` test, or a raw one of a record that
    normalising could flag or rewrite), with `text` where it holds the values.

    True only when `route` gives, for its (lower-cased Channel, EventID), a test of the raw EventData that
    says no rule can match, and `from_nested(record, parsed=True)` would normalise it without a flag or a
    problem. Every condition is one of `from_nested`'s and `_finish`'s own fast paths: any other record
    goes down the full path. The key comes first, as it is all that a record normalised anyway pays for.
    """
    event = record.get("Event") if type(record) is dict else None
    system = event.get("System") if type(event) is dict else None
    if type(system) is not dict:
        return None, False
    event_id = _event_id(system)
    if type(event_id) is not int or not 0 <= event_id <= bounds.MAX_EVENT_ID:
        return None, False
    channel = system.get("Channel")
    if channel is None:
        skips = route((None, event_id))
    elif type(channel) is str:
        skips = route((channel.lower(), event_id))
    else:
        return None, False
    if skips is None:
        return None, False
    if not _quiet(event, system):
        # normalised first: a raw test holds for the normalised fields too, which carry every field it
        # reads with the same value (and the reader asks only once nothing is flagged)
        return skips, False
    if skips.normalised:
        return skips, True
    # the raw test reads EventData only once `_quiet` has found it flat: as normalising would copy it
    return (True if skips(event.get("EventData"), text) else None), True


def _quiet(event: dict[str, Any], system: dict[str, Any]) -> bool:
    """The rest of `route_record`'s test: nothing `from_nested` would flag, rewrite or refuse."""
    if "UserData" in event or "ProcessingErrorData" in event:
        return False
    data = event.get("EventData")
    if data is not None and not _flat(data):
        return False
    record_id = system.get("EventRecordID")
    if record_id is not None and not (type(record_id) is int and 0 <= record_id <= bounds.INT64_MAX):
        return False
    computer = system.get("Computer")
    if computer is not None and type(computer) is not str:
        return False
    provider, stamp = _provider_and_time(system)
    return (provider is None or type(provider) is str) and (stamp is None or _usual_time(stamp))


def from_wrapped(record: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    data = record.get("data")
    if type(data) is str:
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise NotAnEvent(f"`data` is not JSON: {exc}") from None
    if type(data) is not dict:
        raise NotAnEvent("`data` is not an object")
    return from_nested(data)


def from_flat(record: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    out: dict[str, Any] = {}
    metadata = FLAT_METADATA
    for key, value in record.items():
        if key not in metadata:
            out[key] = value if type(value) in _SCALARS else _value(value, out, key)
    event_type = record.get("EventType")
    if event_type is not None and event_type not in _NXLOG_EVENT_TYPES:
        out["EventType"] = event_type  # Sysmon 12-14's own EventType (SetValue, CreateKey, ...)
    event_id = record.get("EventID")
    if "AccountType" in record and parse_number(event_id) != 7045:
        for key in _RESOLVED_ACCOUNT:
            out.pop(key, None)
    rid = _finish(
        out, event_id, record.get("Channel"), record.get("SourceName"), record.get("Hostname"),
        record.get("RecordNumber"),
    )  # fmt: skip
    stamp = record.get("@timestamp")
    timestamp = normalise_timestamp(stamp) if stamp is not None else None
    if timestamp is None:
        local = record.get("EventTime")  # local time, zone unknown: the last resort
        timestamp = normalise_timestamp(local) if local is not None else None
        if timestamp is None and (stamp is not None or local is not None):
            bounds.flag_timestamp(out, stamp if stamp is not None else local)
    return out, timestamp, rid


def _dotted(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Keys written flat with dots (`winlog.event_data.ImagePath`) under `prefix`."""
    size = len(prefix)
    return {key[size:]: value for key, value in record.items() if key.startswith(prefix)}


def from_ecs(record: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    winlog = record.get("winlog")
    if type(winlog) is not dict:
        winlog = {}
    if any(key.startswith("winlog.") for key in record):
        winlog = {**_dotted(record, "winlog."), **winlog}
    out: dict[str, Any] = {}
    event_data = winlog.get("event_data")
    if type(event_data) is dict:
        _add_event_data(event_data, out)
    extra = _dotted(winlog, "event_data.")
    if extra:
        _add_event_data(extra, out)
    user_data = winlog.get("user_data")
    if type(user_data) is dict:
        _add_leaves(user_data, out)
        out.pop("xml_name", None)  # Winlogbeat's name of the UserData child element, not a field
    elif user_data is not None:
        _add_user_data(user_data, out)
    extra = _dotted(winlog, "user_data.")
    if extra:
        _add_leaves(extra, out)
        out.pop("xml_name", None)
    event_id = winlog.get("event_id")
    if event_id is None:
        event = record.get("event")
        event_id = event.get("code") if type(event) is dict else record.get("event.code")
    computer = winlog.get("computer_name")
    if computer is None:
        host = record.get("host")
        computer = host.get("name") if type(host) is dict else record.get("host.name")
    rid = _finish(
        out, event_id, winlog.get("channel"), winlog.get("provider_name"), computer,
        winlog.get("record_id"),
    )  # fmt: skip
    return out, _timestamp(out, record.get("@timestamp")), rid


_BY_SHAPE = {NESTED: from_nested, WRAPPED: from_wrapped, FLAT: from_flat, ECS: from_ecs}


def normalise_record(record: Any, shape: str | None = None) -> tuple[dict[str, Any], str | None, int | None]:
    """(fields, timestamp, record_id) of one parsed JSON value; raises NotAnEvent when it is none.

    `shape` is the file's shape found on its first event; a record that does not fit it is detected
    again on its own (mixed files happen when logs are concatenated).
    """
    if shape is None or type(record) is not dict or _SHAPE_KEY[shape] not in record:
        shape = detect_shape(record)
        if shape is None:
            raise NotAnEvent("not a Windows event (no Event, EventID or winlog)")
    return _BY_SHAPE[shape](record)


# The key whose presence confirms a record still has the file's shape.
_SHAPE_KEY = {NESTED: "Event", WRAPPED: "event_record_id", FLAT: "EventID", ECS: "winlog"}
