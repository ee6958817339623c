"""ATT&CK Navigator layers (layer format 4.5): techniques seen in alerts, or techniques the rules cover."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

from svchunt.model import LEVEL_RANK, LEVELS, Alert, RuleInfo

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
ATTACK_VERSION = "17"
DOMAIN = "enterprise-attack"
LEVEL_COLOURS = {
    "informational": "#d9d9d9",
    "low": "#9ecae1",
    "medium": "#fdd835",
    "high": "#fb8c00",
    "critical": "#d32f2f",
}


def _layer(name: str, description: str, techniques: list[dict[str, Any]], max_score: int) -> dict[str, Any]:
    return {
        "name": name,
        "versions": {"attack": ATTACK_VERSION, "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": DOMAIN,
        "description": description,
        "filters": {"platforms": ["Windows"]},
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": ["#ffffff", "#ff6666"], "minValue": 0, "maxValue": max(max_score, 1)},
        "legendItems": [],
        "metadata": [{"name": "generator", "value": "svchunt"}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }


def _valid_id(tid: str) -> bool:
    # Tags are free text in Sigma; only T#### or T####.### are technique ids the Navigator can place.
    head, _, sub = tid.partition(".")
    return (
        len(head) == 5
        and head[0] == "T"
        and head[1:].isdigit()
        and (not sub or (len(sub) == 3 and sub.isdigit()))
    )


def alerts_layer(alerts: list[Alert], name: str = "svchunt alerts", score: str = "count") -> dict[str, Any]:
    """One entry per technique seen in alerts; score is the alert count, or the highest level's rank (1-5)
    with `score="level"`. The comment lists the rules and hosts behind it."""
    counts: Counter[str] = Counter()
    top_level: dict[str, str] = {}
    rules: dict[str, set[str]] = defaultdict(set)
    hosts: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        for tid in alert.rule.techniques:
            if not _valid_id(tid):
                continue
            counts[tid] += 1
            rules[tid].add(alert.rule.title)
            hosts[tid].add(alert.computer or "(unknown)")
            if LEVEL_RANK.get(alert.rule.level, -1) > LEVEL_RANK.get(top_level.get(tid, ""), -1):
                top_level[tid] = alert.rule.level
    techniques = []
    for tid in sorted(counts):
        level = top_level.get(tid, "medium")
        value = counts[tid] if score == "count" else LEVEL_RANK.get(level, 2) + 1
        techniques.append(
            {
                "techniqueID": tid,
                "score": value,
                "color": LEVEL_COLOURS.get(level, ""),
                "comment": f"{counts[tid]} alert(s), highest level {level}; rules: "
                + "; ".join(sorted(rules[tid]))
                + "; hosts: "
                + ", ".join(sorted(hosts[tid])),
                "enabled": True,
                "showSubtechniques": False,
                "metadata": [
                    {"name": "highest level", "value": level},
                    {"name": "alerts", "value": str(counts[tid])},
                ],
            }
        )
    max_score = max((t["score"] for t in techniques), default=1) if score == "count" else len(LEVELS)
    layer = _layer(
        name, "Techniques of the alerts raised by svchunt; colour = highest level", techniques, max_score
    )
    layer["legendItems"] = [{"label": lvl, "color": LEVEL_COLOURS[lvl]} for lvl in reversed(LEVELS)]
    return layer


def coverage_layer(rules: list[RuleInfo], name: str = "svchunt coverage") -> dict[str, Any]:
    """Techniques the loaded rules cover; score = number of rules tagging the technique."""
    titles: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        for tid in dict.fromkeys(rule.techniques):
            if _valid_id(tid):
                titles[tid].append(rule.title)
    techniques = [
        {
            "techniqueID": tid,
            "score": len(titles[tid]),
            "comment": f"{len(titles[tid])} rule(s): " + "; ".join(sorted(titles[tid])),
            "enabled": True,
        }
        for tid in sorted(titles)
    ]
    max_score = max((t["score"] for t in techniques), default=1)
    return _layer(name, "Techniques covered by the loaded svchunt rules", techniques, max_score)


def write_layer(layer: dict[str, Any], path: str) -> None:
    Path(path).write_bytes(orjson.dumps(layer, option=orjson.OPT_INDENT_2))
