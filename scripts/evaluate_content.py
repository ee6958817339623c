#!/usr/bin/env python3
"""Run the built-in content pack over EVTX-ATTACK-SAMPLES, OTRF and the benign corpus; write docs/evaluation.md.

Three views of the same run:
- alerts: every alert per sample file with its rule, evidence records and the judgement (TP/FP + reason)
  from scripts/evaluate_content_judgements.yml (UNJUDGED / stale entries are listed);
- precision: per sample file, the brief items the alerts claim against the items the brief ties to that
  file (scripts/evaluate_content_brief.yml): (file, claimed item) pairs the brief does not support, tool
  files that miss their tool's item or get another tool's item;
- benign: claims and levels on the OTRF lab recordings and on the benign corpus (tests/fixtures/benign).

    .venv/bin/python scripts/evaluate_content.py            # rewrite docs/evaluation.md
    .venv/bin/python scripts/evaluate_content.py --check    # exit 1 on unjudged/stale entries, unsupported
                                                            # pairs, tool misattributions or benign claims
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from svchunt.engine.hunt import HuntOptions, run_hunt  # noqa: E402
from svchunt.model import LEVEL_RANK, Alert  # noqa: E402

SHARED = Path(os.environ.get("SVCHUNT_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_SAMPLES = SHARED / "evtx-attack-samples"
DEFAULT_OTRF = SHARED / "otrf"
BENIGN = REPO / "tests" / "fixtures" / "benign"
# The site tuning the benign admin-PsExec scenario is evaluated with (PsExec by an admin is PsExec).
BENIGN_ALLOWLISTS = {"admin_psexec.jsonl": [str(BENIGN / "admin_allowlist.yml")]}
DEFAULT_JUDGEMENTS = REPO / "scripts" / "evaluate_content_judgements.yml"
DEFAULT_BRIEF = REPO / "scripts" / "evaluate_content_brief.yml"
DEFAULT_OUT = REPO / "docs" / "evaluation.md"

# The brief items that name an attack tool, per tool. A tool item may be claimed only where that tool's
# own fingerprint is; PT-CR-217 ("PsExec or a PsExec-like tool") belongs to PsExec and its analogues.
TOOL_ITEMS: dict[str, tuple[str, ...]] = {
    "sysinternals-psexec": ("PT-CR-589", "PT-CR-217"),
    "psexec-analog": ("PT-CR-217",),
    "impacket-psexec": ("PT-CR-226",),
    "impacket-smbexec": ("PT-CR-523",),
    "cobalt-strike-jump": ("PT-CR-752", "PT-CR-2632"),
    "cobalt-strike-elevate": ("PT-CR-2632",),
    "sliver-psexec": ("PT-CR-1356",),
    "sliver-getsystem": ("PT-CR-1355",),
    "masky": ("PT-CR-1363",),
    "nimexec": ("PT-CR-1838",),
}
ALL_TOOL_ITEMS = frozenset(i for items in TOOL_ITEMS.values() for i in items)


def _key(file: str, rule: str) -> str:
    return f"{file} | {rule}"


def _rel(source: str, root: Path) -> str:
    return os.path.relpath(source.split("!", 1)[0], root).replace(os.sep, "/")


@dataclass
class Precision:
    claimed: dict[str, set[str]] = field(default_factory=dict)  # file -> items
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (file, item)
    cited: int = 0
    behaviour: int = 0
    tool_missing: list[tuple[str, str]] = field(default_factory=list)  # (file, tool item not claimed)
    tool_wrong: list[tuple[str, str]] = field(default_factory=list)  # (file, other tool's item)
    not_claimed: dict[str, list[str]] = field(default_factory=dict)  # file -> supported items never claimed


def claims_by_file(alerts: list[Alert], root: Path) -> dict[str, set[str]]:
    """Items claimed per file: an alert counts for every file its evidence comes from."""
    out: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        for source in {e.source for e in alert.evidence}:
            out[_rel(source, root)].update(alert.rule.claims)
    return out


def precision(alerts: list[Alert], root: Path, brief: dict[str, dict]) -> Precision:
    result = Precision(claimed=claims_by_file(alerts, root))
    for file, items in sorted(result.claimed.items()):
        entry = brief.get(file) or {}
        supported = entry.get("supported") or {}
        tools = entry.get("tools") or []
        allowed_tools = {i for t in tools for i in TOOL_ITEMS[t]}
        for item in sorted(items):
            reason = supported.get(item)
            if reason is None:
                result.unsupported.append((file, item))
            elif str(reason).startswith("behaviour"):
                result.behaviour += 1
            else:
                result.cited += 1
            if item in ALL_TOOL_ITEMS and item not in allowed_tools:
                result.tool_wrong.append((file, item))
    for file, entry in sorted(brief.items()):
        got = result.claimed.get(file, set())
        for tool in entry.get("tools") or []:
            for item in TOOL_ITEMS[tool]:
                if item not in got:
                    result.tool_missing.append((file, item))
        missing = sorted(set(entry.get("supported") or {}) - got)
        if missing:
            result.not_claimed[file] = missing
    return result


@dataclass
class BenignRow:
    name: str
    records: int
    alerts: int
    by_level: dict[str, int]
    tool_claims: list[str]
    items: list[str]
    allowlist: str = ""


def benign_rows(paths: list[Path], allowlists: dict[str, list[str]] | None = None) -> list[BenignRow]:
    rows = []
    for path in paths:
        extra = (allowlists or {}).get(path.name, [])
        result = run_hunt(HuntOptions(paths=[str(path)], allowlists=extra, use_cache=False, workers=1))
        levels: dict[str, int] = defaultdict(int)
        tools: list[str] = []
        items: set[str] = set()
        for alert in result.alerts:
            levels[alert.rule.level] += 1
            items.update(alert.rule.claims)
            tools += [f"{i} ({alert.rule.name})" for i in alert.rule.claims if i in ALL_TOOL_ITEMS]
        rows.append(BenignRow(path.name, result.stats.records_read, len(result.alerts), dict(levels),
                              sorted(set(tools)), sorted(items), ", ".join(Path(a).name for a in extra)))  # fmt: skip
    return rows


def above_low(row: BenignRow) -> int:
    return sum(n for level, n in row.by_level.items() if LEVEL_RANK[level] > LEVEL_RANK["low"])


def _levels(row: BenignRow) -> str:
    return ", ".join(f"{level} {n}" for level, n in sorted(row.by_level.items(), key=lambda x: LEVEL_RANK[x[0]])) or "-"


def benign_section(title: str, rows: list[BenignRow]) -> list[str]:
    out = [f"### {title}", "", "| Input | Records | Alerts | By level | Above low | Tool items claimed | Items claimed | Allowlist |",
           "|---|---:|---:|---|---:|---|---|---|"]  # fmt: skip
    for r in rows:
        out.append(f"| `{r.name}` | {r.records} | {r.alerts} | {_levels(r)} | {above_low(r)} | "
                   f"{'<br>'.join(r.tool_claims) or '0'} | {', '.join(r.items) or '-'} | {r.allowlist or '-'} |")  # fmt: skip
    return out + [""]


def alert_sections(alerts: list[Alert], samples: Path, judgements: dict[str, list[str]]) -> tuple[list[str], list[str], set[str], dict[str, int]]:
    by_file: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for alert in alerts:
        by_file[_rel(alert.evidence[0].source, samples)][alert.rule.name or alert.rule.rule_id].append(alert)
    verdicts = {"TP": 0, "FP": 0, "UNJUDGED": 0}
    unjudged: list[str] = []
    used: set[str] = set()
    sections: list[str] = []
    for file in sorted(by_file):
        rows = []
        for rule in sorted(by_file[file]):
            group = by_file[file][rule]
            key = _key(file, rule)
            verdict, reason = (judgements.get(key) or ["UNJUDGED", "no judgement yet: review and add it"])[:2]
            (used.add if key in judgements else unjudged.append)(key)
            verdicts[verdict] = verdicts.get(verdict, 0) + len(group)
            first = group[0]
            records = ", ".join(
                "+".join(str(e.record_id) for e in a.evidence)
                if len({e.source for e in a.evidence}) == 1
                else "+".join(f"{Path(e.source).name}#{e.record_id}" for e in a.evidence)
                for a in group
            )
            kind = f"corr, {first.rule.level}" if first.kind == "correlation" else first.rule.level
            claims = ", ".join(first.rule.claims) or "—"
            rows.append(f"| `{rule}` | {kind} | {claims} | {len(group)} | {records} | **{verdict}** | {reason} |")
        sections.append(
            f"### {file}\n\n| Rule | Level | Claims | Alerts | Evidence (EventRecordID) | Verdict | Reason |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
        )
    return sections, unjudged, used, verdicts


def evaluate(samples: Path, judgements: dict[str, list[str]], brief: dict[str, dict], otrf: Path | None) -> tuple[str, list[str]]:
    started = time.perf_counter()
    result = run_hunt(HuntOptions(paths=[str(samples)], use_cache=False))
    seconds = time.perf_counter() - started
    sections, unjudged, used, verdicts = alert_sections(result.alerts, samples, judgements)
    stale = sorted(set(judgements) - used)
    prec = precision(result.alerts, samples, brief)
    otrf_rows = benign_rows(sorted(otrf.glob("*.zip"))) if otrf and otrf.is_dir() else []
    benign_files = sorted(BENIGN.glob("*.jsonl"))
    benign_default = benign_rows(benign_files)
    benign_tuned = benign_rows([BENIGN / n for n in BENIGN_ALLOWLISTS], BENIGN_ALLOWLISTS)
    tuned = {r.name: r for r in benign_tuned}
    benign_final = [tuned.get(r.name, r) for r in benign_default]
    problems: list[str] = [f"UNJUDGED: {k}" for k in unjudged] + [f"STALE: {k}" for k in stale]
    problems += [f"UNSUPPORTED: {f} | {i}" for f, i in prec.unsupported]
    problems += [f"TOOL MISSING: {f} | {i}" for f, i in prec.tool_missing]
    problems += [f"TOOL WRONG: {f} | {i}" for f, i in prec.tool_wrong]
    problems += [f"BENIGN TOOL CLAIM: {r.name}: {c}" for r in benign_final + otrf_rows for c in r.tool_claims]
    problems += [f"BENIGN ABOVE LOW: {r.name}: {above_low(r)}" for r in benign_final if above_low(r)]
    problems += [f"OTRF ALERTS: {r.name}: {r.alerts}" for r in otrf_rows if r.alerts]

    total = len(result.alerts)
    s = result.stats
    tool_files = [f for f, e in brief.items() if e.get("tools")]
    pairs = sum(len(v) for v in prec.claimed.values())
    head = [
        "# Evaluation of the built-in content pack",
        "",
        "Generated by `scripts/evaluate_content.py` (do not edit by hand; judgements live in",
        "`scripts/evaluate_content_judgements.yml`, what the brief ties to each sample in",
        "`scripts/evaluate_content_brief.yml`). The whole built-in pack (rules + correlations, default",
        "allowlists) is run over every file of `../shared/data/evtx-attack-samples`, over the OTRF lab",
        "recordings (`../shared/data/otrf`) and over the benign corpus (`tests/fixtures/benign`).",
        "",
        "## Summary",
        "",
        f"- EVTX-ATTACK-SAMPLES: {s.files} files, {s.records_read} records; {s.rules_loaded} rules, "
        f"{s.correlations_loaded} correlations; {total} alerts in {len({_rel(a.evidence[0].source, samples) for a in result.alerts})} files "
        f"(TP {verdicts.get('TP', 0)}, FP {verdicts.get('FP', 0)}, unjudged {verdicts.get('UNJUDGED', 0)}); "
        f"input problems reported by the reader: {len(result.problems)} (non-EVTX files: readme, pcap, logs, .etl); "
        f"wall time {seconds:.2f} s",
        f"- Precision: {pairs} (file, claimed item) pairs in {len(prec.claimed)} files — {prec.cited} cited by the brief "
        f"for that file, {prec.behaviour} supported by the brief's behaviour facts only, "
        f"**{len(prec.unsupported)} not supported by the brief**",
        f"- Tools: {len(tool_files)} files the brief ties to a tool — **{len(prec.tool_missing)} missing tool items, "
        f"{len(prec.tool_wrong)} claims of another tool's item** (over all files)",
        f"- OTRF benign recordings: {sum(r.records for r in otrf_rows)} records in {len(otrf_rows)} files, "
        f"**{sum(r.alerts for r in otrf_rows)} alerts, {sum(len(r.tool_claims) for r in otrf_rows)} tool claims**",
        f"- Benign corpus: {sum(r.records for r in benign_final)} records in {len(benign_final)} scenarios, "
        f"{sum(r.alerts for r in benign_final)} alerts, **{sum(len(r.tool_claims) for r in benign_final)} tool items claimed, "
        f"{sum(above_low(r) for r in benign_final)} alerts above low** (admin PsExec with the site allowlist; "
        f"without it: {sum(len(r.tool_claims) for r in benign_default)} (tool item, rule) claims of PT-CR-589/217, "
        f"{sum(above_low(r) for r in benign_default)} alerts above low, all in `admin_psexec.jsonl`)",
        "",
    ]
    if problems:
        head += ["## Problems (what `--check` fails on)", ""] + [f"- {p}" for p in problems] + [""]
    head += [
        "## Precision per sample file",
        "",
        "Items an alert claims count for every file its evidence comes from. *Supported* = the brief ties",
        "the item to that file (cited: the brief names the file or record; behaviour: the brief does not",
        "cite the file but its facts for the item describe the evidence — see the reasons in",
        "`scripts/evaluate_content_brief.yml`). *Not claimed* lists supported items no alert claims (recall).",
        "",
        "| File | Tool (brief) | Claimed | Not supported | Supported, not claimed |",
        "|---|---|---|---|---|",
    ]
    unsupported = defaultdict(list)
    for f, i in prec.unsupported:
        unsupported[f].append(i)
    for file in sorted(set(prec.claimed) | set(brief)):
        entry = brief.get(file) or {}
        tools = ", ".join(entry.get("tools") or []) or (f"— ({entry['note']})" if entry.get("note") else "—")
        head.append(
            f"| {file} | {tools} | {', '.join(sorted(prec.claimed.get(file, ()))) or '-'} | "
            f"{', '.join(unsupported.get(file, [])) or '0'} | {', '.join(prec.not_claimed.get(file, [])) or '-'} |"
        )
    head += ["", "## Benign inputs", ""]
    if otrf_rows:
        head += benign_section("OTRF lab recordings (WMI/MSBuild lateral movement and domain noise, no service activity)", otrf_rows)
    head += benign_section("Benign corpus, default content", benign_default)
    head += benign_section("Benign corpus, admin PsExec with the site allowlist", benign_tuned)
    head += ["## Alerts per sample file", "",
             "Files with no alert are not listed: none of them contains service or driver activity that the pack",
             "targets, except the near misses used as negative tests (see `svchunt/content/test_cases.yml`).", ""]
    return "\n".join(head) + "\n" + "\n".join(sections), problems


def refresh_coverage_table(doc: Path) -> None:
    """Rewrite the generated coverage table between the markers of docs/coverage.md."""
    from svchunt.cli.coverage import collect_rules, markdown_table
    from svchunt.rules.coverage import build_coverage

    pairs, _ = collect_rules([], builtin=True)
    start, end = "<!-- coverage-table:start -->", "<!-- coverage-table:end -->"
    text = doc.read_text(encoding="utf-8")
    if start not in text or end not in text:
        print(f"{doc}: coverage-table markers missing; table not refreshed", file=sys.stderr)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{markdown_table(build_coverage(pairs))}\n{end}{tail}", encoding="utf-8")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    ap.add_argument("--otrf", type=Path, default=DEFAULT_OTRF)
    ap.add_argument("--judgements", type=Path, default=DEFAULT_JUDGEMENTS)
    ap.add_argument("--brief", type=Path, default=DEFAULT_BRIEF)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 on any problem listed in the report")
    args = ap.parse_args()
    if not args.samples.is_dir():
        print(f"samples folder not found: {args.samples}", file=sys.stderr)
        return 2
    judgements = load_yaml(args.judgements)
    bad = [k for k, v in judgements.items() if not (isinstance(v, list) and len(v) == 2 and v[0] in ("TP", "FP"))]
    if bad:
        print(f"{args.judgements}: judgements must be [TP|FP, reason]: {bad}", file=sys.stderr)
        return 2
    brief = load_yaml(args.brief)
    unknown = sorted({t for e in brief.values() for t in e.get("tools") or []} - set(TOOL_ITEMS))
    if unknown:
        print(f"{args.brief}: unknown tools {unknown} (known: {', '.join(TOOL_ITEMS)})", file=sys.stderr)
        return 2
    text, problems = evaluate(args.samples, judgements, brief, args.otrf)
    refresh_coverage_table(REPO / "docs" / "coverage.md")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(problems)} problems)")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
