"""Incidents: the alerts of one attack on one host, grouped into a story an analyst reads first.

A stage after correlation. Alerts of the same target host are joined (union-find) when they share a key
(`incident_keys`: the same log record, service name, image path, logon session, process or parent process,
PsExec session, named pipe, remote source address or workstation) and, sorted by time, consecutive alerts
with that key are at most the key's gap apart (`incident_keys.GAPS`). Two kinds of alert never join
incidents together, they are attached to the one that holds most of their evidence instead: aggregate
correlations (a burst of service installs counts events, it does not say they are one attack) and alerts
without a single target host. docs/incidents.md explains the choices.

The result depends only on the set of alerts: every alert is in exactly one incident, whatever order the
alerts come in, and an incident's id is a hash of its alert ids.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from svchunt.correlate.incident_keys import (
    GAPS,
    Facts,
    FieldMemo,
    alert_host,
    event_ref,
    keys_and_facts,
    merged_facts,
)
from svchunt.model import LEVEL_RANK, Alert, field_dict
from svchunt.rules.coverage import BRIEF_IDS, ITEM_TITLES

# Correlation types that count or sum events in a window: they never join incidents (see module doc).
AGGREGATE_TYPES = {"event_count", "value_count", "value_sum", "value_avg", "value_percentile", "value_median"}

# Items that name the tool: the most specific verdict an incident title can carry.
TOOL_ITEMS = {
    "PT-CR-589", "PT-CR-226", "PT-CR-523", "PT-CR-1356", "PT-CR-1355", "PT-CR-752", "PT-CR-2632", "PT-CR-1838",
    "PT-CR-1363",
}  # fmt: skip
# Items that say only that a service event happened: the least specific.
GENERIC_ITEMS = {
    "DS0019.creation", "DS0019.modification", "DS0024.registry", "DS0017.commands", "DS0009.new-service",
    "DS0009.api", "M1018", "M1028", "M1040", "M1045", "M1047",
}  # fmt: skip
# A rule that claims more items than this does not know which one happened: its claims cannot title.
MAX_TITLE_CLAIMS = 3
UNKNOWN_HOST = "(unknown host)"


@dataclass(slots=True)
class Incident:
    incident_id: str
    host: str
    start: str | None
    end: str | None
    title: str
    level: str
    claims: list[str]
    techniques: list[str]
    sources: dict[str, list[str]]  # addresses, workstations, accounts
    services: list[str]
    images: list[str]
    alert_ids: list[str]  # in time order
    alerts: list[Alert] = field(repr=False, default_factory=list)
    related: list[str] = field(default_factory=list)  # incidents sharing evidence with an attached alert

    @property
    def source_text(self) -> str:
        return source_text(self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "host": self.host,
            "start": self.start,
            "end": self.end,
            "title": self.title,
            "level": self.level,
            "claims": self.claims,
            "claim_titles": {c: ITEM_TITLES[c] for c in self.claims if c in ITEM_TITLES},
            "techniques": self.techniques,
            "source": self.sources,
            "services": self.services,
            "images": self.images,
            "alerts": len(self.alert_ids),
            "alert_ids": self.alert_ids,
            "related": self.related,
        }


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller index wins, so the structure does not depend on the order unions happen in.
            self.parent[max(ra, rb)] = min(ra, rb)


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _is_attached(alert: Alert, host: str) -> bool:
    kind = alert.extra.get("correlation_type") if isinstance(alert.extra, dict) else None
    return (alert.kind == "correlation" and kind in AGGREGATE_TYPES) or not host


def level_rank(level: str) -> int:
    return LEVEL_RANK.get(level, -1)


def build_incidents(alerts: Iterable[Alert]) -> list[Incident]:
    """Group alerts into incidents; most severe first, then earliest, then by id."""
    unique: dict[str, Alert] = {}
    for alert in alerts:
        aid = alert.alert_id  # a hash: computed once per alert here
        seen = unique.get(aid)
        # The same id is the same rule on the same evidence: keep one copy, the same one whatever the order.
        if seen is None or _canonical(alert) < _canonical(seen):
            unique[aid] = alert
    # A canonical order (time, then id) makes every later step independent of the input order.
    pairs = sorted(unique.items(), key=lambda kv: (kv[1].timestamp or "", kv[0]))
    del unique
    ordered = [a for _, a in pairs]
    ids = [aid for aid, _ in pairs]
    del pairs
    # Memory is per alert here (a big hunt has 10^5 alerts): host names shared, facts shared between the
    # alerts of one event, and for each key only the last alert that had it.
    host_names: dict[str, str] = {}
    hosts = [host_names.setdefault(h, h) for h in map(alert_host, ordered)]
    times = [_epoch(a.timestamp) for a in ordered]
    facts: list[Facts] = []
    uf = _UnionFind(len(ordered))
    last: dict[tuple[str, str, str], int] = {}
    attached: list[int] = []
    memo: FieldMemo = {}
    memo_time: str | None = None
    for i, alert in enumerate(ordered):
        if alert.timestamp != memo_time:  # an event's alerts all carry its time, and arrive in time order
            memo.clear()
            memo_time = alert.timestamp
        keys, own = keys_and_facts(alert, memo)  # one pass gives the keys and the facts shown later
        facts.append(own)
        if _is_attached(alert, hosts[i]):
            attached.append(i)
            continue
        # Alerts come in time order: joining each to the previous alert with the key joins consecutive ones.
        t1 = times[i]
        for kind, value in keys:
            member = (hosts[i], kind, value)
            prev = last.get(member)
            last[member] = i
            if prev is not None:
                t0 = times[prev]
                if kind == "event" or (t0 is not None and t1 is not None and t1 - t0 <= GAPS[kind]):
                    uf.union(prev, i)
    del last, memo

    groups: dict[int, list[int]] = defaultdict(list)
    is_attached = set(attached)
    for i in range(len(ordered)):
        if i not in is_attached:
            groups[uf.find(i)].append(i)
    # Evidence record -> the group holding it, for attaching aggregate and host-less alerts (their records only).
    wanted = {event_ref(e.source, e.record_id, e.line, e.header_record_id) for i in attached for e in ordered[i].evidence}
    holder: dict[str, set[int]] = defaultdict(set)
    if wanted:
        for root, idx in groups.items():
            for i in idx:
                for e in ordered[i].evidence:
                    ref = event_ref(e.source, e.record_id, e.line, e.header_record_id)
                    if ref in wanted:
                        holder[ref].add(root)
    related: dict[int, set[int]] = defaultdict(set)
    orphans = _UnionFind(len(ordered))
    orphan_refs: dict[str, list[int]] = defaultdict(list)
    placed: set[int] = set()
    for i in attached:
        counts: dict[int, int] = defaultdict(int)
        for e in ordered[i].evidence:
            for root in holder.get(event_ref(e.source, e.record_id, e.line, e.header_record_id), ()):
                counts[root] += 1
        if not counts:
            for e in ordered[i].evidence:
                orphan_refs[event_ref(e.source, e.record_id, e.line, e.header_record_id)].append(i)
            continue
        best = max(counts, key=lambda r: (counts[r], _group_rank(ordered, groups[r]), -r))
        groups[best].append(i)
        placed.add(i)
        related[best].update(r for r in counts if r != best)
    for idx in orphan_refs.values():
        for a, b in zip(idx, idx[1:], strict=False):
            orphans.union(a, b)
    orphan_groups: dict[int, list[int]] = defaultdict(list)
    for i in attached:
        if i not in placed:
            orphan_groups[orphans.find(i)].append(i)

    incidents: dict[int, Incident] = {}
    for root, idx in list(groups.items()) + [(len(ordered) + r, idx) for r, idx in orphan_groups.items()]:
        idx = sorted(idx)
        incidents[root] = _incident(
            [ordered[i] for i in idx], [ids[i] for i in idx], [facts[i] for i in idx], hosts[idx[0]] or UNKNOWN_HOST
        )
    for root, others in related.items():
        incidents[root].related = sorted(incidents[o].incident_id for o in others)
        for o in others:
            if incidents[root].incident_id not in incidents[o].related:
                incidents[o].related = sorted([*incidents[o].related, incidents[root].incident_id])
    return sorted(incidents.values(), key=incident_order)


def _canonical(alert: Alert) -> bytes:
    return orjson.dumps(
        [alert.timestamp, alert.computer, field_dict(alert.fields), alert.group], option=orjson.OPT_SORT_KEYS, default=str
    )


def incident_order(inc: Incident) -> tuple:
    return (-level_rank(inc.level), inc.start or "\uffff", inc.incident_id)


def _group_rank(ordered: list[Alert], idx: list[int]) -> tuple:
    top = max(level_rank(ordered[i].rule.level) for i in idx)
    first = min(ordered[i].timestamp or "\uffff" for i in idx)
    return (top, [-ord(c) for c in first])


def _incident(alerts: list[Alert], ids: list[str], per_alert: list[Facts], host: str) -> Incident:
    """`alerts` with their ids and facts; the steps are listed in time order (untimed last)."""
    order = sorted(range(len(alerts)), key=lambda k: (alerts[k].timestamp or "\uffff", ids[k]))
    alerts, ids, per_alert = [alerts[k] for k in order], [ids[k] for k in order], [per_alert[k] for k in order]
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12]
    times = [t for a in alerts for t in [a.timestamp, *(e.timestamp for e in a.evidence)] if t]
    facts = merged_facts(per_alert)
    position = {id(a): k for k, a in enumerate(alerts)}
    # Attached alerts (aggregates, host-less) count in the level and the claims, not in the title's verdict:
    # "three services installed in five minutes" does not make the services an Impacket attack.
    core = [a for a in alerts if not _is_attached(a, alert_host(a))] or alerts
    top = max(core, key=lambda a: (level_rank(a.rule.level), -position[id(a)]))
    level = max((a.rule.level for a in alerts), key=level_rank)
    claims = rank_claims(core)
    claims += [(c, False) for c, _ in rank_claims(alerts) if c not in {x for x, _ in claims}]
    techniques: list[str] = []
    for a in alerts:
        for t in a.rule.techniques:
            if t not in techniques:
                techniques.append(t)
    sources = {"addresses": facts.addresses, "workstations": facts.workstations, "accounts": facts.accounts}
    return Incident(
        incident_id=f"inc-{digest}",
        host=alerts[0].computer or next((a.computer for a in alerts if a.computer), None) or host,
        start=min(times) if times else None,
        end=max(times) if times else None,
        title=make_title(core, claims, sources, facts.services, facts.images, top),
        level=level,
        claims=[c for c, _ in claims],
        techniques=sorted(techniques),
        sources=sources,
        services=facts.services,
        images=facts.images,
        alert_ids=ids,
        alerts=alerts,
    )


def rank_claims(alerts: list[Alert]) -> list[tuple[str, bool]]:
    """Claimed items, most specific first, each with whether some alert claimed it narrowly enough to title.

    Specificity: a tool's name beats a behaviour, which beats "a service event happened"; then the weight of
    the alerts claiming it (higher level counts more, a rule that claims k items gives each 1/k).
    """
    score: dict[str, float] = defaultdict(float)
    narrow: dict[str, bool] = defaultdict(bool)
    position: dict[str, int] = {}
    for a in alerts:
        claims = a.rule.claims
        for pos, item in enumerate(claims):
            score[item] += (1 + level_rank(a.rule.level) + 1) / len(claims)
            # An informational alert is context, not a verdict: it never names the incident.
            narrow[item] |= len(claims) <= MAX_TITLE_CLAIMS and level_rank(a.rule.level) > 0
            position[item] = min(position.get(item, pos), pos)  # the rule author lists the main claim first
    order = {item: i for i, item in enumerate(BRIEF_IDS)}

    def key(item: str) -> tuple:
        tier = 2 if item in TOOL_ITEMS else 0 if item in GENERIC_ITEMS else 1
        return (not narrow[item], -tier, -round(score[item], 6), position[item], order.get(item, len(order)), item)

    return [(item, narrow[item]) for item in sorted(score, key=key)]


def source_text(sources: dict[str, list[str]]) -> str:
    """`10.0.0.5 (WS12)`, the first address with the first workstation, and how many more there are."""
    addrs, stations = sources.get("addresses") or [], sources.get("workstations") or []
    if addrs:
        text = addrs[0] + (f" ({stations[0]})" if stations else "")
        more = len(addrs) - 1
    elif stations:
        text, more = stations[0], len(stations) - 1
    else:
        return ""
    return text + (f" and {more} more" if more > 0 else "")


def make_title(
    alerts: list[Alert],
    claims: list[tuple[str, bool]],
    sources: dict[str, list[str]],
    services: list[str],
    images: list[str],
    top: Alert,
) -> str:
    """The most specific verdict in words, then the key facts: source, account, service or image."""
    what = ""
    if claims and claims[0][1]:
        item = claims[0][0]
        what = ITEM_TITLES.get(item) or next(a.rule.title for a in alerts if item in a.rule.claims)
    if not what:
        what = top.rule.title
    parts = [what]
    src = source_text(sources)
    if src:
        parts.append(f"from {src}")
    accounts = sources.get("accounts") or []
    if accounts:
        parts.append(f"as {accounts[0]}")
    title = " ".join(parts)
    if services:
        more = f" (+{len(services) - 1})" if len(services) > 1 else ""
        title += f": service {services[0]}{more}"
    elif images:
        title += f": {images[0]}"
    return title


def incidents_by_alert(incidents: Iterable[Incident]) -> dict[str, Incident]:
    return {aid: inc for inc in incidents for aid in inc.alert_ids}
