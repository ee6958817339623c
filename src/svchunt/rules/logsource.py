"""Sigma logsource → the Windows channels and EventIDs that can carry such events.

The tables are pySigma's own (windows and sysmon pipelines), extended with the Security-log forms of
the generic categories (4688 for process_creation, 4657 for registry) that SigmaHQ rules are written
to cover, and a few services pySigma does not name yet. This is data, not logic: edit the tables.
"""

from __future__ import annotations

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import windows_generic_category_channel_mapping

from svchunt.rules.ir import Route

SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"

EXTRA_SERVICES: dict[str, str | list[str]] = {
    "iis-configuration": "Microsoft-IIS-Configuration/Operational",
    "smbserver-connectivity": "Microsoft-Windows-SmbServer/Connectivity",
    "ldap": "Microsoft-Windows-LDAP-Client/Debug",
    "servicebus-client": "Microsoft-ServiceBus-Client",
    "codeintegrity-operational": "Microsoft-Windows-CodeIntegrity/Operational",
}

# Security-log equivalents of generic categories; the normaliser gives those events Sigma's names.
SECURITY_CATEGORY_EVENTS: dict[str, tuple[int, ...]] = {
    "process_creation": (4688,),
    "registry_event": (4657,),
    "registry_set": (4657,),
    "registry_add": (4657,),
}


class UnsupportedLogsource(ValueError):
    pass


def _channels(service: str) -> list[str]:
    mapped = windows_logsource_mapping.get(service) or EXTRA_SERVICES.get(service)
    if mapped is None:
        raise UnsupportedLogsource(f"logsource service '{service}' has no known Windows channel")
    return [mapped] if isinstance(mapped, str) else list(mapped)


def _as_ids(value: int | list[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def routes_for(product: str | None, category: str | None, service: str | None) -> tuple[Route, ...]:
    """Routes for a rule's logsource; raises UnsupportedLogsource with a reason a user can act on."""
    if product not in (None, "windows"):
        raise UnsupportedLogsource(f"logsource product '{product}' is not a Windows event log")
    if category is None and service is None:
        return (Route(None, None),)
    if category is None:
        return tuple(Route(ch, None) for ch in _channels(service))  # type: ignore[arg-type]
    if category in windows_generic_category_channel_mapping:
        info = windows_generic_category_channel_mapping[category]
        return tuple(Route(ch, (info["EventID"],)) for ch in _channels(info["service"]))
    if category in sysmon_generic_logsource_eventid_mapping:
        routes = [Route(SYSMON, _as_ids(sysmon_generic_logsource_eventid_mapping[category]))]
        if category in SECURITY_CATEGORY_EVENTS:
            routes.append(Route(SECURITY, SECURITY_CATEGORY_EVENTS[category]))
        if service is not None:  # category + service: only that service's channel
            wanted = {c.lower() for c in _channels(service)}
            routes = [r for r in routes if r.channel and r.channel.lower() in wanted]
        return tuple(routes)
    raise UnsupportedLogsource(f"logsource category '{category}' is not produced by any Windows channel we read")
