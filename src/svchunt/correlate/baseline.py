"""State beyond a window: the "new service" analytic and fleet stacking, kept in an embedded DuckDB file.

* key = (host, service name, normalised image), from service installs/starts (7045, 4697, Sysmon 13 on a
  service's ImagePath, or any signal whose rule `covers` DS0009.new-service);
* first run on a host: its sightings only build the baseline (a note says so), no alert;
* later runs: a key not seen on that host in the `window_days` before the event -> alert kind="baseline";
* fleet stacking: an image seen on <= `rare_hosts` hosts while the fleet has >= `min_fleet` hosts -> alert.

Re-running the same input gives the same alerts: the first run's time range stays "baseline" for that host
(`hosts.baseline_until`), and an event's own sighting never counts as "seen before" itself.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

from svchunt.correlate.occurrence import event_identity, event_order
from svchunt.correlate.timeparse import to_micros
from svchunt.model import Alert, Event, Evidence, RuleInfo, Signal

NEW_SERVICE = RuleInfo(
    rule_id="svchunt-baseline-new-service",
    title="Service not seen on this host in the previous 30 days",
    level="medium",
    tags=("attack.persistence", "attack.t1543.003"),
    covers=("DS0009.new-service",),
    claims=("DS0009.new-service",),
    description="A (host, service name, image) that the state file has not seen on this host recently.",
    falsepositives=("software installs and updates", "first run after a long gap in the state file"),
)
RARE_IMAGE = RuleInfo(
    rule_id="svchunt-baseline-rare-image",
    title="Service image path seen on few hosts of the fleet",
    level="low",
    tags=("attack.persistence", "attack.t1543.003"),
    covers=("DS0009.new-service",),
    claims=("DS0009.new-service",),
    description="Fleet stacking: a service binary that only a handful of hosts run.",
    falsepositives=("role-specific software on a few servers",),
)

_SERVICE_KEY = re.compile(r"\\services\\([^\\]+)\\imagepath$", re.IGNORECASE)
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta(key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS hosts(host VARCHAR PRIMARY KEY, baseline_until BIGINT, services INTEGER)",
    "CREATE TABLE IF NOT EXISTS sightings(host VARCHAR, name VARCHAR, image VARCHAR, ts BIGINT, "
    "ident VARCHAR, PRIMARY KEY (host, ident))",
]
SCHEMA_VERSION = "1"
DAY_US = 86_400 * 1_000_000


@dataclass(slots=True)
class Observation:
    host: str
    name: str
    image: str
    ts: int
    ident: str
    event: Event

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.image)


@dataclass(slots=True)
class BaselineResult:
    alerts: list[Alert]
    notes: list[str]
    skipped: Counter[str] = field(default_factory=Counter)


def is_service_signal(signal: Signal) -> bool:
    if any(item.lower().endswith("new-service") for item in signal.rule.covers):
        return True
    fields = signal.event.fields
    event_id = signal.event.event_id
    if event_id in (7045, 4697):
        return True
    return event_id == 13 and bool(_SERVICE_KEY.search(str(fields.get("TargetObject") or "")))


def normalise_image(value: object) -> str:
    """Fallback when the normaliser did not add ImagePathNormalised: case and surrounding quotes only."""
    return str(value).strip().strip('"').strip().lower() if value is not None else ""


def observe(signal: Signal) -> Observation | str:
    """The baseline key of a service signal, or the reason it has none."""
    event = signal.event
    fields = event.fields
    host = fields.get("Computer")
    if not host:
        return "no Computer field"
    if event.timestamp is None:
        return "no timestamp"
    name = fields.get("ServiceName")
    if not name:
        found = _SERVICE_KEY.search(str(fields.get("TargetObject") or ""))
        name = found.group(1) if found else None
    if not name:
        return "no service name (ServiceName or Services\\<name>\\ImagePath TargetObject)"
    image = fields.get("ImagePathNormalised") or fields.get("ImagePath")
    if image is None and event.event_id == 13:
        image = fields.get("Details")
    try:
        ts = to_micros(event.timestamp)
    except ValueError:
        return f"unreadable timestamp {event.timestamp!r}"
    ident = "|".join("" if part is None else str(part) for part in event_identity(event))
    return Observation(str(host).lower(), str(name).lower(), normalise_image(image), ts, ident, event)


class ServiceBaseline:
    def __init__(self, path: str | None, window_days: int = 30, rare_hosts: int = 2, min_fleet: int = 5) -> None:
        self.path = path
        self.window_us = window_days * DAY_US
        self.window_days = window_days
        self.rare_hosts = rare_hosts
        self.min_fleet = min_fleet
        self.db = duckdb.connect(path or ":memory:")
        for statement in _SCHEMA:
            self.db.execute(statement)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", [SCHEMA_VERSION])
        elif row[0] != SCHEMA_VERSION:
            raise ValueError(f"state file {path}: schema {row[0]!r}, this svchunt writes {SCHEMA_VERSION!r}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ServiceBaseline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process(self, signals: Iterable[Signal]) -> BaselineResult:
        """Compare this run's service sightings with the history, then add them to it."""
        skipped: Counter[str] = Counter()
        unique: dict[str, Observation] = {}
        for signal in signals:
            if not is_service_signal(signal):
                continue
            found = observe(signal)
            if isinstance(found, str):
                skipped[f"service signal without baseline key: {found} (rule {signal.rule.rule_id})"] += 1
                continue
            unique.setdefault(found.ident, found)
        observations = sorted(unique.values(), key=lambda o: (o.ts, event_order(o.event)))
        by_host: dict[str, list[Observation]] = defaultdict(list)
        for obs in observations:
            by_host[obs.host].append(obs)

        known = dict(self.db.execute("SELECT host, baseline_until FROM hosts").fetchall())
        alerts: list[Alert] = []
        notes: list[str] = []
        for host in sorted(by_host):
            host_obs = by_host[host]
            if host not in known:
                services = len({o.key for o in host_obs})
                self.db.execute("INSERT INTO hosts VALUES (?, ?, ?)", [host, host_obs[-1].ts, services])
                notes.append(f"baseline built for host {host} ({services} services); no new-service alerts "
                             "on a host's first run")
            else:
                alerts += self._new_services(host, host_obs, known[host])
        self.db.executemany(
            "INSERT OR IGNORE INTO sightings VALUES (?, ?, ?, ?, ?)",
            [[o.host, o.name, o.image, o.ts, o.ident] for o in observations],
        )
        alerts += self._rare_images(observations)
        notes += [f"{count} signal(s) skipped by the baseline: {reason}" for reason, count in sorted(skipped.items())]
        return BaselineResult(sorted(alerts, key=lambda a: (*a.sort_key(), a.alert_id)), notes, skipped)

    def _new_services(self, host: str, observations: list[Observation], baseline_until: int) -> list[Alert]:
        history: dict[tuple[str, str], list[int]] = defaultdict(list)
        rows = self.db.execute("SELECT name, image, ts FROM sightings WHERE host = ? ORDER BY ts", [host]).fetchall()
        for name, image, ts in rows:
            history[(name, image)].append(ts)
        open_alerts: dict[tuple[str, str], tuple[int, list[Observation]]] = {}
        groups: list[list[Observation]] = []
        for obs in observations:
            if obs.ts <= baseline_until:
                continue  # inside the host's baseline period
            current = open_alerts.get(obs.key)
            if current is not None and current[0] >= obs.ts - self.window_us:
                current[1].append(obs)  # same new service seen again (e.g. 7045 and 4697 of one install)
                continue
            seen = history[obs.key]
            index = bisect.bisect_left(seen, obs.ts - self.window_us)
            recently_seen = index < len(seen) and seen[index] < obs.ts
            bisect.insort(seen, obs.ts)
            if recently_seen:
                continue
            members = [obs]
            open_alerts[obs.key] = (obs.ts, members)
            groups.append(members)
        return [self._alert(NEW_SERVICE, members, {
            "service_name": members[0].name,
            "image": members[0].image,
            "not_seen_days": self.window_days,
        }) for members in groups]

    def _rare_images(self, observations: list[Observation]) -> list[Alert]:
        fleet = self.db.execute("SELECT count(*) FROM hosts").fetchone()[0]
        if fleet < self.min_fleet:
            return []
        by_image: dict[str, list[Observation]] = defaultdict(list)
        for obs in observations:
            if obs.image:
                by_image[obs.image].append(obs)
        alerts = []
        for image in sorted(by_image):
            hosts = [row[0] for row in self.db.execute(
                "SELECT DISTINCT host FROM sightings WHERE image = ? ORDER BY host", [image]).fetchall()]
            if len(hosts) <= self.rare_hosts:
                alerts.append(self._alert(RARE_IMAGE, by_image[image], {
                    "image": image, "hosts": hosts, "host_count": len(hosts), "fleet_size": fleet,
                    "rare_hosts": self.rare_hosts,
                }))
        return alerts

    @staticmethod
    def _alert(rule: RuleInfo, members: list[Observation], fields: dict) -> Alert:
        events = sorted((o.event for o in members), key=event_order)
        computers = {o.host for o in members}
        return Alert(
            rule=rule,
            timestamp=events[0].timestamp,
            computer=events[0].computer if len(computers) == 1 else None,
            evidence=[Evidence.of(e) for e in events],
            fields=fields,
            kind="baseline",
            group={"host": members[0].host} if len(computers) == 1 else {},
        )
