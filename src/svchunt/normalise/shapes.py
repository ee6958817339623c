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

from svchunt.normalise.derived import add_derived
from svchunt.normalise.timestamps import normalise_timestamp

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


def _value(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list and all(type(item) in _SCALARS for item in value):
        return value
    if kind is dict and "#text" in value and all(k in ("#text", "#attributes") for k in value):
        return _value(value["#text"])
    return orjson.dumps(value).decode()


def _unnamed_data(value: Any) -> Any:
    """Unnamed `<Data>` elements: a string stays a string, several become a list of strings."""
    if type(value) is dict:
        if "#text" not in value:
            return orjson.dumps(value).decode()
        value = value["#text"]
    if type(value) is list:
        return [item if type(item) is str else _text(item) for item in value]
    return value if type(value) in _SCALARS else orjson.dumps(value).decode()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if type(value) in _SCALARS:
        return str(value)
    return orjson.dumps(value).decode()


def _add_event_data(data: Any, out: dict[str, Any]) -> None:
    if type(data) is not dict:
        if data is not None:
            out["Data"] = _unnamed_data(data)
        return
    for key, value in data.items():
        if key == "Data" or key == "#text":
            out["Data"] = _unnamed_data(value)
        elif type(value) in _SCALARS:
            out[key] = value
        elif key != "#attributes":
            out[key] = _value(value)


def _add_leaves(node: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in node.items():
        if key == "#attributes":
            continue
        if type(value) is dict and "#text" not in value:
            _add_leaves(value, out)
        else:
            out[key] = _value(value)


def _add_user_data(data: Any, out: dict[str, Any]) -> None:
    """`UserData` holds one provider-defined element; its leaf values become fields by element name."""
    if type(data) is not dict:
        if data is not None:
            out["UserData"] = _value(data)
        return
    for key, child in data.items():
        if key == "#attributes":
            continue
        if type(child) is dict:
            _add_leaves(child, out)
        else:
            out[key] = _value(child)


def _as_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is dict:  # EventID with Qualifiers: {"#attributes": {...}, "#text": 7045}
        return _as_int(value.get("#text"))
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _attribute(node: Any, name: str) -> Any:
    if type(node) is dict:
        attributes = node.get("#attributes")
        if type(attributes) is dict:
            return attributes.get(name)
    return None


def _finish(
    out: dict[str, Any], event_id: int | None, channel: Any, provider: Any, computer: Any, record_id: Any
) -> int | None:
    if event_id is None:
        raise NotAnEvent("no EventID")
    out["EventID"] = event_id
    out["Channel"] = channel
    out["Provider_Name"] = provider
    out["Computer"] = computer
    rid = record_id if type(record_id) is int else _as_int(record_id) if record_id is not None else None
    if rid is not None:
        out["EventRecordID"] = rid
    add_derived(out)
    return rid


def from_nested(record: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    """`{"Event": {...}}` -> (fields, timestamp, EventRecordID). Hot path for EVTX: keep it lean."""
    event = record.get("Event")
    if type(event) is not dict:
        raise NotAnEvent("`Event` is not an object")
    system = event.get("System")
    if type(system) is not dict:
        raise NotAnEvent("no `Event.System`")
    data = event.get("EventData")
    # Usual case: named Data with scalar values, already flat. The parsed dict is ours: reuse it
    # (the type check runs in C through map/issuperset).
    if type(data) is dict and _SCALARS.issuperset(map(type, data.values())) and "#text" not in data:
        out: dict[str, Any] = data
    else:
        out = {}
        if data is not None:
            _add_event_data(data, out)
    if "UserData" in event:
        _add_user_data(event["UserData"], out)
    if "ProcessingErrorData" in event:
        _add_event_data(event["ProcessingErrorData"], out)
    event_id = system.get("EventID")
    if type(event_id) is not int:
        event_id = _as_int(event_id)
    provider = system.get("Provider")
    try:
        provider = provider["#attributes"]["Name"]  # type: ignore[index]
    except (KeyError, TypeError):
        provider = None
    try:
        stamp = system["TimeCreated"]["#attributes"]["SystemTime"]
        timestamp = (
            stamp
            if len(stamp) == 27 and stamp[26] == "Z" and stamp[10] == "T"
            else normalise_timestamp(stamp)
        )
    except (KeyError, TypeError):
        timestamp = None
    rid = _finish(
        out, event_id, system.get("Channel"), provider, system.get("Computer"), system.get("EventRecordID")
    )
    return out, timestamp, rid


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
            out[key] = value if type(value) in _SCALARS else _value(value)
    event_type = record.get("EventType")
    if event_type is not None and event_type not in _NXLOG_EVENT_TYPES:
        out["EventType"] = event_type  # Sysmon 12-14's own EventType (SetValue, CreateKey, ...)
    event_id = _as_int(record.get("EventID"))
    if "AccountType" in record and event_id != 7045:
        for key in _RESOLVED_ACCOUNT:
            out.pop(key, None)
    rid = _finish(
        out, event_id, record.get("Channel"), record.get("SourceName"), record.get("Hostname"),
        record.get("RecordNumber"),
    )  # fmt: skip
    stamp = record.get("@timestamp")
    timestamp = normalise_timestamp(stamp) if stamp is not None else None
    if timestamp is None:
        timestamp = normalise_timestamp(record.get("EventTime"))  # local time, zone unknown: last resort
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
        out, _as_int(event_id), winlog.get("channel"), winlog.get("provider_name"), computer,
        winlog.get("record_id"),
    )  # fmt: skip
    return out, normalise_timestamp(record.get("@timestamp")), rid


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
