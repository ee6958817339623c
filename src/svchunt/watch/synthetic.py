"""A deterministic synthetic event stream (NXLog flat shape) for the watch tests and bench.

Mostly benign noise (logons, service state changes, svchost starts) with, every `every` events, a
PsExec-like service install (7045) on one of `hosts` hosts, so detections fire and, with several installs on
one host within 5 minutes, the service-install burst correlation too. Event `i` is the same on every call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def event(i: int, step_ms: int = 100, hosts: int = 8, every: int = 50, base: datetime = BASE) -> dict[str, Any]:
    ts = (base + timedelta(milliseconds=i * step_ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = f"HOST{i % hosts:02d}.corp.local"
    common = {"@timestamp": ts, "Hostname": host, "RecordNumber": i + 1}
    kind = i % every
    if kind in (7, 32):  # one even, one odd: both halves of a split stream have installs
        return {**common, "EventID": 7045, "Channel": "System", "SourceName": "Service Control Manager",
                "ServiceName": f"PSEXESVC{i % 7}", "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
                "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"}
    if kind % 3 == 0:
        return {**common, "EventID": 4624, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
                "TargetUserName": f"user{i % 13}", "LogonType": 3, "IpAddress": f"10.0.{i % 7}.{i % 250}"}
    if kind % 3 == 1:
        return {**common, "EventID": 7036, "Channel": "System", "SourceName": "Service Control Manager",
                "param1": "Windows Update", "param2": "running"}
    return {**common, "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "SourceName": "Microsoft-Windows-Sysmon", "Image": "C:\\Windows\\System32\\svchost.exe",
            "CommandLine": "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "ParentImage":
            "C:\\Windows\\System32\\services.exe", "User": "NT AUTHORITY\\SYSTEM"}


def line(i: int, **kw: Any) -> bytes:
    return orjson.dumps(event(i, **kw)) + b"\n"
