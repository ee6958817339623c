"""What one alert says about the attack it belongs to: the keys that join it to other alerts, and its facts.

Keys are normalised so that the spellings one attack leaves in different logs meet: service names
case-folded and unquoted, every path through `normalise_image_path` (`%SystemRoot%\\x.exe`,
`\\??\\C:\\Windows\\x.exe` and an ADMIN$ write of `x.exe` all become `c:\\windows\\x.exe`), logon ids and
process ids as numbers whatever base the log wrote them in.

Keys that every attack on a host would share are never emitted, because they would glue unrelated stories
together: the SYSTEM / LOCAL SERVICE / NETWORK SERVICE logon sessions, process ids 0 and 4, long-lived
Windows processes (services.exe is the parent of *every* service), and shared Windows binaries such as
cmd.exe or System32's svchost.exe as "image" keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from svchunt.model import Alert, field_dict
from svchunt.normalise.image_path import executable_part, normalise_image_path

# Seconds two consecutive alerts sharing a key may be apart and still be one story (docs/incidents.md).
GAPS: dict[str, float] = {
    "event": float("inf"),  # the same log record: always the same story
    "session": 3600.0,  # one PsExec session (pipe prefix, source host, client pid)
    "process": 24 * 3600.0,  # a Sysmon ProcessGuid is unique: a process and its children
    "pid": 600.0,  # a process id without a GUID is reused by Windows within minutes
    "logon": 8 * 3600.0,  # one logon session (ids are unique per boot)
    "service": 2 * 3600.0,  # install, start, pipes, cleanup of one service
    "image": 2 * 3600.0,  # copy of the binary, the service running it, the process it becomes
    "pipe": 600.0,  # both ends of a named pipe
    "stem": 600.0,  # PSEXESVC.exe, the \\PSEXESVC pipe and the PSEXESVC service: one tool's name
    "command": 2 * 3600.0,  # a service's full command line and the process it starts (cmd.exe /c ...)
    "source": 1800.0,  # the same remote address or workstation on this host
}

# Logon sessions of the machine itself (SYSTEM, NETWORK SERVICE, LOCAL SERVICE) and the null session.
_MACHINE_LOGONS = {0x0, 0x3E7, 0x3E4, 0x3E5}
_NO_VALUE = {"", "-", "null", "none", "n/a", "localhost", "127.0.0.1", "::1"}
# Long-lived processes that are the parent or actor of unrelated activity: never a process-tree key.
_HUB_PROCESSES = {
    "system", "registry", "smss.exe", "csrss.exe", "wininit.exe", "winlogon.exe", "services.exe", "lsass.exe",
    "svchost.exe", "explorer.exe", "wmiprvse.exe", "taskhostw.exe", "taskeng.exe", "spoolsv.exe", "userinit.exe",
    "mmc.exe", "dllhost.exe", "msiexec.exe", "trustedinstaller.exe", "tiworker.exe", "conhost.exe",
}  # fmt: skip
# Programs many unrelated services run (smbexec, Metasploit and admins alike use cmd.exe): no image key.
_SHARED_BINARIES = {
    "cmd.exe", "powershell.exe", "pwsh.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe", "wscript.exe",
    "cscript.exe", "msiexec.exe", "sc.exe", "reg.exe", "net.exe", "net1.exe", "wmic.exe", "certutil.exe",
    "bitsadmin.exe", "schtasks.exe", "cmd", "powershell", "system",
}  # fmt: skip
_ACCOUNTS_SKIPPED = {"system", "local service", "network service", "anonymous logon", "localsystem", "-", ""}
_SYSTEM_DIRS = ("c:\\windows\\system32\\", "c:\\windows\\syswow64\\", "c:\\windows\\winsxs\\")

_SERVICE_KEY = re.compile(r"\\services\\([^\\]+)(?:\\(.*))?$", re.IGNORECASE)
# PsExec and its renamed copies: <service>-<source host>-<client pid>-stdin|stdout|stderr
_PSEXEC_PIPE = re.compile(r"^\\*([^\\]+?)-([^-\\]+)-(\d+)-(?:stdin|stdout|stderr)$", re.IGNORECASE)
# PAExec: PAExec-<client pid>-<source host>
_PAEXEC_PIPE = re.compile(r"^\\*(paexec)-(\d+)-([^\\]+)$", re.IGNORECASE)


@dataclass(slots=True)
class Facts:
    """What an alert shows of the attack, as logged (original spelling, for display)."""

    services: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    workstations: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    logon_ids: list[str] = field(default_factory=list)


def _add(values: list[str], value: str) -> None:
    if value and value.lower() not in (v.lower() for v in values):
        values.append(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value).strip().strip('"').strip("'").strip()
    return "" if text.lower() in _NO_VALUE else text


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _text(value).lower()
    if not text:
        return None
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1].lower()


def _image_key(raw: Any) -> str:
    """The normalised path, or "" when it is a binary many unrelated services share."""
    text = _text(raw)
    if not text:
        return ""
    path = normalise_image_path(text)
    if not path or _basename(path) in _SHARED_BINARIES:
        return ""
    if path.startswith(_SYSTEM_DIRS) and _basename(path) in _HUB_PROCESSES:
        return ""
    return path


def _is_hub(image: Any) -> bool:
    text = _text(image)
    return bool(text) and _basename(text) in _HUB_PROCESSES and (
        "\\" not in text or normalise_image_path(text).startswith(_SYSTEM_DIRS)
    )


def _account(domain: Any, user: Any) -> str:
    """`DOMAIN\\user`; "" for the machine's own accounts (SYSTEM, services, computer accounts)."""
    name, dom = _text(user), _text(domain)
    if "\\" in name:
        dom, name = name.split("\\", 1)
    if name.lower() in _ACCOUNTS_SKIPPED or name.endswith("$") or dom.lower() in ("nt authority", "font driver host"):
        return ""
    return f"{dom}\\{name}" if dom else name


def _stem(path: str) -> str:
    base = _basename(path)
    return base.rsplit(".", 1)[0] if "." in base else base


def command_key(raw: Any) -> str:
    """A command line with its program reduced to the program's name: `%COMSPEC% /c x` and
    `C:\\Windows\\system32\\cmd.exe /c x` meet. "" when there are no arguments (the image key covers that)."""
    text = ("" if raw is None else str(raw)).strip().replace("%%", "%")
    program = executable_part(text)
    if not program:
        return ""
    rest = text[len(program) + 2 :] if text.startswith('"') else text[len(program) :]
    rest = " ".join(rest.lower().split())
    if not rest:
        return ""
    return f"{_stem(normalise_image_path(program))}|{rest}"


_TOKEN = re.compile(r'"[^"]*"|\S+')
_SC_VERBS = {
    "create", "config", "start", "stop", "delete", "failure", "failureflag", "sdset", "description", "qc",
    "privs", "sidtype", "triggerinfo", "pause", "continue", "control",
}  # fmt: skip


def sc_service(command: Any) -> str:
    """The service an `sc.exe [\\\\server] VERB NAME ...` command works on, else ""."""
    tokens = [t.strip('"') for t in _TOKEN.findall("" if command is None else str(command))]
    if not tokens or _stem(tokens[0]) != "sc":
        return ""
    rest = tokens[1:]
    if rest and rest[0].startswith("\\\\"):
        rest = rest[1:]
    if len(rest) >= 2 and rest[0].lower() in _SC_VERBS:
        return rest[1]
    return ""


def _address(value: Any) -> str:
    text = _text(value).lower()
    if text.startswith("::ffff:"):
        text = text[7:]
    return "" if text in _NO_VALUE else text


def _workstation(value: Any) -> str:
    # Shown as logged (only the leading `\\\\` of `\\\\WS12` dropped): quotes may be part of a forged name.
    text = "" if value is None else str(value).strip().lstrip("\\")
    return "" if text.lower() in _NO_VALUE else text


def event_ref(source: str, record_id: int | None, line: int | None, header: int | None) -> str:
    return f"{source}\x00{record_id}\x00{line}\x00{header}"


def _pipe_name(fields: Mapping[str, Any]) -> str:
    pipe = _text(fields.get("PipeName"))
    if pipe:
        return pipe
    share = _text(fields.get("ShareName")).lower()
    if share.endswith("ipc$"):
        return _text(fields.get("RelativeTargetName"))
    return ""


def field_keys(fields: Mapping[str, Any], facts: Facts) -> Iterator[tuple[str, str]]:
    """(kind, normalised value) pairs of one event's fields; fills `facts` on the way."""
    event_id = _number(fields.get("EventID"))
    channel = _text(fields.get("Channel")).lower()

    for name in ("ServiceName", "param2" if event_id == 7009 else "", "param1" if event_id in (7000, 7036) else ""):
        svc = _text(fields.get(name)) if name else ""
        if svc:
            _add(facts.services, svc)
            yield "service", svc.lower()
            yield "stem", svc.lower()
    target = _text(fields.get("TargetObject"))
    match = _SERVICE_KEY.search(target) if target else None
    if match:
        _add(facts.services, match.group(1))
        yield "service", match.group(1).lower()
        yield "stem", match.group(1).lower()
    sc_name = sc_service(fields.get("CommandLine"))
    if sc_name:
        _add(facts.services, sc_name)
        yield "service", sc_name.lower()

    for name in ("ImagePathCommand", "ImagePath", "ServiceFileName", "CommandLine"):
        key = command_key(fields.get(name))
        if key:
            yield "command", key
    if target.lower().endswith("\\imagepath"):
        key = command_key(fields.get("Details"))
        if key:
            yield "command", key

    for name in ("ImagePathNormalised", "ImagePath", "ServiceFileName"):
        raw = fields.get(name)
        if _text(raw):
            key = _image_key(raw)
            if name != "ImagePathNormalised":
                _add(facts.images, _text(raw))
            if key:
                yield "image", key
                yield "stem", _stem(key)
    for name in ("TargetFilename", "ImageLoaded"):
        key = _image_key(fields.get(name))
        if key:
            yield "image", key
            yield "stem", _stem(key)
    share = _text(fields.get("ShareName")).lower()
    relative = _text(fields.get("RelativeTargetName"))
    if relative and not share.endswith("ipc$"):
        local = _text(fields.get("ShareLocalPath")) or "c:"
        key = _image_key(f"{local.rstrip(chr(92))}\\{relative}")
        if key:
            yield "image", key

    yield from _process_keys(fields, event_id, channel)

    for name in ("SubjectLogonId", "TargetLogonId", "LogonId"):
        luid = _number(fields.get(name))
        if luid is not None and luid not in _MACHINE_LOGONS:
            _add(facts.logon_ids, hex(luid))
            yield "logon", hex(luid)

    address = _address(fields.get("IpAddress"))
    if address:
        _add(facts.addresses, address)
        yield "source", address
    workstation = _workstation(fields.get("WorkstationName"))
    if workstation:
        _add(facts.workstations, workstation)
        yield "source", workstation.lower()
    for domain, user in (("TargetDomainName", "TargetUserName"), ("SubjectDomainName", "SubjectUserName")):
        if event_id == 4624 and user.startswith("Subject"):
            continue  # a 4624's subject is the local machine, its target the account that logged on
        acct = _account(fields.get(domain), fields.get(user))
        if acct:
            _add(facts.accounts, acct)
    user = _account(None, fields.get("User"))
    if user and channel.startswith("microsoft-windows-sysmon") and event_id == 1:
        _add(facts.accounts, user)

    pipe = _pipe_name(fields)
    if pipe:
        yield "pipe", pipe.lower().lstrip("\\")
        psexec = _PSEXEC_PIPE.match(pipe)
        paexec = _PAEXEC_PIPE.match(pipe)
        if psexec:
            svc, host, pid = psexec.groups()
            _add(facts.workstations, host)
            yield "session", f"{svc}-{host}-{pid}".lower()
            yield "service", svc.lower()
            yield "stem", svc.lower()
            yield "source", host.lower()
        elif paexec:
            svc, pid, host = paexec.groups()
            _add(facts.workstations, host)
            yield "session", f"{svc}-{host}-{pid}".lower()
            yield "source", host.lower()
        elif pipe.lower().lstrip("\\") not in ("svcctl", "ntsvcs", "atsvc", "lsarpc", "samr", "srvsvc", "winreg"):
            # A tool's own pipe is named after its service (\PSEXESVC, \RemCom_communicaton): the prefix
            # before any separator joins the pipe to the service of that name.
            stem = re.split(r"[-_.]", pipe.lstrip("\\"), maxsplit=1)[0].lower()
            if stem:
                yield "stem", stem


def _process_keys(fields: Mapping[str, Any], event_id: int | None, channel: str) -> Iterator[tuple[str, str]]:
    """Own process and parent process, by Sysmon GUID where there is one, else by pid and image name."""
    if channel == "security" and event_id == 4688:
        own = (None, _number(fields.get("NewProcessId")), fields.get("Image"))
        parent = (None, _number(fields.get("ProcessId")), fields.get("ParentImage"))
    else:
        own = (fields.get("ProcessGuid"), _number(fields.get("ProcessId")), fields.get("Image"))
        parent = (fields.get("ParentProcessGuid"), _number(fields.get("ParentProcessId")), fields.get("ParentImage"))
    for guid, pid, image in (own, parent):
        if _is_hub(image) or pid in (0, 4):
            continue
        guid_text = _text(guid).strip("{}").lower()
        if guid_text and guid_text.strip("0-"):
            yield "process", guid_text
        elif pid is not None and _text(image):
            yield "pid", f"{pid}|{_basename(_text(image))}"
    parent_image = _text(fields.get("ParentImage"))
    image = _text(fields.get("Image"))
    if image:
        key = _image_key(image)
        if key:
            yield "image", key
            # A tool's binary is usually named like its service and pipe (PSEXESVC.exe, RemComSvc.exe).
            yield "stem", _stem(key)
    if parent_image and not _is_hub(parent_image):
        key = _image_key(parent_image)
        if key:
            yield "image", key


def alert_host(alert: Alert) -> str:
    """The target host, lower-case; correlation alerts fall back to their group's or fields' Computer."""
    for value in (alert.computer, alert.group.get("Computer"), alert.fields.get("Computer")):
        text = _text(value)
        if text:
            return text.lower()
    return ""


def alert_events(alert: Alert) -> list[Mapping[str, Any]]:
    """The field sets an alert carries: its own fields, and each evidence event's where it has them."""
    out: list[Mapping[str, Any]] = [field_dict(alert.fields)]
    events = alert.extra.get("events") if isinstance(alert.extra, dict) else None
    if isinstance(events, list):
        out.extend(e for e in events if isinstance(e, dict))
    if alert.group:
        out.append(alert.group)
    return out


FieldMemo = dict[tuple[str, int], tuple[tuple[tuple[str, str], ...], Facts]]


def alert_keys(alert: Alert, facts: Facts | None = None, memo: FieldMemo | None = None) -> set[tuple[str, str]]:
    """Every (kind, value) key of an alert: its evidence records and the keys of its fields."""
    keys, found = keys_and_facts(alert, memo)
    if facts is not None:
        _merge_facts(facts, found)
    return keys


def keys_and_facts(alert: Alert, memo: FieldMemo | None = None) -> tuple[set[tuple[str, str]], Facts]:
    """An alert's keys (see `alert_keys`) and its facts.

    With `memo`, the keys and facts of a single-event detection are computed once per evidence record and
    the facts are shared, not copied (treat them as read-only): several rules matching one event (common
    with a large rule set) carry the same fields.
    """
    refs = [event_ref(e.source, e.record_id, e.line, e.header_record_id) for e in alert.evidence]
    keys = {("event", ref) for ref in refs}
    if memo is not None and alert.kind == "detection" and len(refs) == 1 and not alert.group and not alert.extra:
        slot = (refs[0], len(alert.fields))
        found = memo.get(slot)
        if found is None:
            derive = getattr(alert.fields, "derived", None)  # computed by the worker that matched the event
            data = derive() if derive is not None else None
            found = memo[slot] = event_keys_from_json(data) if data is not None else event_keys(alert.fields)
        keys.update(found[0])
        return keys, found[1]
    facts = Facts()
    for fields in alert_events(alert):
        keys.update(field_keys(fields, facts))
    return keys, facts


def event_keys(fields: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], Facts]:
    """The keys and (read-only) facts of one event's fields: what all its single-event alerts share."""
    own = Facts()
    return tuple(field_keys(field_dict(fields), own)), _compact(own)


def event_keys_json(fields: Mapping[str, Any]) -> list[Any]:
    """`event_keys` as JSON, computed where the event was matched (a hunt's worker) and kept with its fields."""
    keys, facts = event_keys(fields)
    return [keys, [getattr(facts, name) for name in _FACT_NAMES]]


def event_keys_from_json(data: Any) -> tuple[tuple[tuple[str, str], ...], Facts]:
    keys, facts = data
    return tuple((kind, value) for kind, value in keys), Facts(*(values or _NO_FACTS for values in facts))


_NO_FACTS: tuple[str, ...] = ()
_FACT_NAMES = ("services", "images", "addresses", "workstations", "accounts", "logon_ids")


def _compact(facts: Facts) -> Facts:
    """Read-only facts with each empty list replaced by one shared empty tuple (most are empty: 6 lists
    per matched event add up in a big hunt)."""
    for name in _FACT_NAMES:
        if not getattr(facts, name):
            setattr(facts, name, _NO_FACTS)
    return facts


def _merge_facts(into: Facts, other: Facts) -> None:
    _merge_into(into, [other])


def merged_facts(parts: list[Facts]) -> Facts:
    """The facts of several alerts together (an incident's): each value once, ignoring case, first spelling."""
    facts = Facts()
    _merge_into(facts, parts)
    return facts


def _merge_into(into: Facts, parts: list[Facts]) -> None:
    # `_add`'s rule, with one set of the values seen per fact: a big incident merges thousands of alerts
    for name in _FACT_NAMES:
        target = getattr(into, name)
        known = {v.lower() for v in target}
        for part in parts:
            for value in getattr(part, name):
                low = value.lower()
                if value and low not in known:
                    target.append(value)
                    known.add(low)


def alert_facts(alert: Alert) -> Facts:
    facts = Facts()
    for fields in alert_events(alert):
        for _ in field_keys(fields, facts):
            pass
    return facts


# The field that tells what an alert saw, in the order an analyst looks for it (timeline, report steps).
TELLING_FIELDS = (
    "ImagePath", "ServiceFileName", "CommandLine", "PipeName", "RelativeTargetName", "TargetObject",
    "TargetFilename", "ImageLoaded", "ScriptBlockText", "Image", "ServiceName",
)  # fmt: skip


def telling_field(alert: Alert) -> tuple[str, str]:
    """(field name, value) that shows what happened; correlation alerts show their group and counts."""
    found = _telling(alert.fields)
    if found[0]:
        return found
    for fields in alert_events(alert)[1:]:
        found = _telling(fields)
        if found[0]:
            return found
    if alert.kind == "correlation":
        parts = [f"{k}={v}" for k, v in alert.group.items() if k != "Computer" and v not in (None, "")]
        parts.append(f"{len(alert.evidence)} events")
        return "group", ", ".join(parts)
    return "", ""


def _telling(fields: Mapping[str, Any]) -> tuple[str, str]:
    for name in TELLING_FIELDS:
        value = fields.get(name)
        if value not in (None, ""):
            if name == "TargetObject" and fields.get("Details") not in (None, ""):
                return name, f"{value} = {fields['Details']}"
            if name == "RelativeTargetName" and fields.get("ShareName"):
                return name, f"{fields['ShareName']}\\{value}"
            return name, str(value)
    return "", ""
