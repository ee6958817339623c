"""Counts shared by the terminal summary and the HTML report, so both tell the same story."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from svchunt.model import LEVEL_RANK, LEVELS, Alert, Problem, Refusal

EXAMPLES_PER_REASON = 3


@dataclass(slots=True)
class ProblemGroup:
    reason: str
    count: int
    examples: list[tuple[str, str]] = field(default_factory=list)  # (source, position)


def by_level(alerts: list[Alert]) -> dict[str, int]:
    """Count per level, most severe first; levels outside the Sigma set are kept, after the known ones."""
    counts = Counter(a.rule.level for a in alerts)
    ordered = {lvl: counts[lvl] for lvl in reversed(LEVELS) if counts.get(lvl)}
    ordered.update({lvl: n for lvl, n in sorted(counts.items()) if lvl not in ordered})
    return ordered


def by_rule(alerts: list[Alert]) -> list[tuple[str, str, str, int]]:
    """(rule_id, title, level, count), most severe then most frequent first."""
    counts: Counter[str] = Counter()
    info: dict[str, tuple[str, str]] = {}
    for a in alerts:
        counts[a.rule.rule_id] += 1
        info.setdefault(a.rule.rule_id, (a.rule.title, a.rule.level))
    rows = [(rid, info[rid][0], info[rid][1], n) for rid, n in counts.items()]
    rows.sort(key=lambda r: (-LEVEL_RANK.get(r[2], -1), -r[3], r[1], r[0]))
    return rows


def by_host(alerts: list[Alert]) -> list[tuple[str, int, str]]:
    """(host, count, highest level), most alerts first."""
    counts: Counter[str] = Counter()
    top: dict[str, str] = {}
    for a in alerts:
        host = a.computer or "(unknown)"
        counts[host] += 1
        if LEVEL_RANK.get(a.rule.level, -1) > LEVEL_RANK.get(top.get(host, ""), -1):
            top[host] = a.rule.level
    return [(h, n, top.get(h, "")) for h, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def group_problems(problems: list[Problem]) -> list[ProblemGroup]:
    """reason -> count with the first few (source, position) examples, most frequent reason first."""
    groups: dict[str, ProblemGroup] = {}
    for p in problems:
        g = groups.get(p.reason)
        if g is None:
            g = groups[p.reason] = ProblemGroup(p.reason, 0)
        g.count += 1
        if len(g.examples) < EXAMPLES_PER_REASON:
            g.examples.append((p.source, p.position))
    return sorted(groups.values(), key=lambda g: (-g.count, g.reason))


def group_refusals(refused: list[Refusal]) -> dict[str, list[Refusal]]:
    out: dict[str, list[Refusal]] = defaultdict(list)
    for r in refused:
        out[r.reason].append(r)
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))
