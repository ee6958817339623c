"""`hunt --engine spark` on Spark local[2] gives the embedded engine's answer: alerts, evidence, counts, problems.

One Spark session serves the whole module (a JVM start costs seconds). The tests skip with the reason when
pyspark or Java is missing; CI installs both (.ci/run).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import shared

from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.model import HuntResult
from svchunt.rules.loader import LoadedRule, RuleSet
from svchunt.spark.arrow import FILE_SCHEMA
from svchunt.spark.dataset import WriteStats, iter_input_events, write_events
from svchunt.spark.session import unavailable_reason

MASTER = "local[2]"


@pytest.fixture(scope="module")
def spark():
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"Spark engine tests need pyspark and Java: {reason}")
    from svchunt.spark.session import get_session

    session = get_session(MASTER)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def samples() -> Path:
    return shared("evtx-attack-samples")


@pytest.fixture(scope="module")
def lake(samples, tmp_path_factory) -> Path:
    """The attack samples as a `svchunt convert` dataset."""
    out = tmp_path_factory.mktemp("lake")
    stats = WriteStats()
    write_events(iter_input_events([str(samples)], stats), str(out), stats)
    assert stats.records_written > 8000
    return out


@pytest.fixture(scope="module")
def sigma_rules() -> tuple[HuntOptions, RuleSet]:
    options = HuntOptions(paths=[], rule_paths=[str(shared("sigma", "rules", "windows"))])
    ruleset = load_ruleset(options)
    assert len(ruleset.rules) > 2000
    return options, ruleset


def both(spark, options: HuntOptions, ruleset: RuleSet | None = None) -> tuple[HuntResult, HuntResult]:
    from svchunt.spark.driver import run_spark_hunt

    ruleset = ruleset if ruleset is not None else load_ruleset(options)
    return run_hunt(options, ruleset), run_spark_hunt(options, ruleset, session=spark)


def assert_same(embedded: HuntResult, spark: HuntResult) -> None:
    # The alert set: ids and evidence (and everything else an alert prints), in the same order.
    assert [a.alert_id for a in spark.alerts] == [a.alert_id for a in embedded.alerts]
    assert [a.to_dict() for a in spark.alerts] == [a.to_dict() for a in embedded.alerts]
    for name in ("files", "records_read", "records_skipped", "files_skipped", "records_matched",
                 "rules_loaded", "correlations_loaded"):  # fmt: skip
        assert getattr(spark.stats, name) == getattr(embedded.stats, name), name
    assert spark.problems == embedded.problems
    assert spark.refused == embedded.refused
    assert spark.notes == embedded.notes


def test_builtin_content_same_alerts_on_the_evtx_samples(spark, samples):
    embedded, on_spark = both(spark, HuntOptions(paths=[str(samples)]))
    assert len(embedded.alerts) > 50 and any(a.kind == "correlation" for a in embedded.alerts)
    assert embedded.problems  # the non-EVTX files of the folder: reported by both, in the same order
    assert_same(embedded, on_spark)


def test_builtin_content_same_alerts_on_the_parquet_dataset(spark, samples, lake):
    embedded_logs = run_hunt(HuntOptions(paths=[str(samples)]))
    embedded, on_spark = both(spark, HuntOptions(paths=[str(lake)]))
    assert_same(embedded, on_spark)
    # and the dataset's alerts are the logs' alerts
    assert [a.to_dict() for a in on_spark.alerts] == [a.to_dict() for a in embedded_logs.alerts]


def test_sigmahq_windows_rules_same_alerts_on_evtx_and_on_parquet(spark, samples, lake, sigma_rules):
    base, ruleset = sigma_rules
    for paths in ([str(samples)], [str(lake)]):
        options = HuntOptions(paths=paths, rule_paths=base.rule_paths)
        embedded, on_spark = both(spark, options, ruleset)
        assert len(embedded.alerts) > 1000
        assert_same(embedded, on_spark)


def test_a_dataset_given_as_a_uri_is_listed_and_read_by_spark(spark, lake):
    from svchunt.spark.driver import is_uri, run_spark_hunt

    assert is_uri("s3a://bucket/lake") and is_uri("dbfs:/lake") and is_uri(f"file:{lake}")
    assert not is_uri(str(lake)) and not is_uri("C:/logs") and not is_uri("relative/dir")
    options = HuntOptions(paths=[str(lake)])
    ruleset = load_ruleset(options)
    embedded = run_hunt(options, ruleset)
    by_uri = run_spark_hunt(HuntOptions(paths=[f"file:{lake}"]), ruleset, session=spark)
    assert [a.to_dict() for a in by_uri.alerts] == [a.to_dict() for a in embedded.alerts]
    assert by_uri.stats.files == embedded.stats.files == len(list(lake.rglob("*.parquet")))
    assert by_uri.stats.records_read == embedded.stats.records_read and by_uri.problems == []


def test_time_window_counts_and_notes_agree(spark, lake):
    options = HuntOptions(paths=[str(lake)], since="2019-01-01T00:00:00.000000Z", until="2020-06-30T00:00:00.000000Z")
    embedded, on_spark = both(spark, options)
    assert any("outside --since/--until" in n for n in embedded.notes)
    assert embedded.alerts and len(embedded.alerts) < len(run_hunt(HuntOptions(paths=[str(lake)])).alerts)
    assert_same(embedded, on_spark)


def test_bad_inputs_give_the_same_problems_in_the_same_order(spark, samples, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    evtx = samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx"
    shutil.copy(evtx, folder / "good.evtx")
    damaged = bytearray(evtx.read_bytes())
    damaged[4096 + 2000 : 4096 + 2400] = b"\xee" * 400  # inside chunk 0's records
    (folder / "damaged.evtx").write_bytes(bytes(damaged))
    (folder / "lines.jsonl").write_text('{"EventID": 7045, "Channel": "System", "ServiceName": "x"}\n{oops\n')
    (folder / "empty.json").write_bytes(b"")
    pq.write_table(pa.table({"a": [1]}), folder / "foreign.parquet")
    rows = pa.Table.from_pydict(
        {"source": ["s"] * 3, "record_id": [1, 2, 3], "line": [None] * 3, "header_record_id": [1, 2, 3],
         "timestamp": ["2020-01-01T00:00:00.000000Z"] * 3, "time": [None] * 3, "event_id": [7045] * 3,
         "computer": ["H"] * 3, "provider": [None] * 3,
         "fields": ['{"EventID": 7045, "Channel": "System", "ImagePath": "C:\\\\Users\\\\Public\\\\x.exe"}',
                    "{broken", '["not", "an", "object"]']},
        schema=FILE_SCHEMA,
    )  # fmt: skip
    pq.write_table(rows, folder / "rows.parquet")
    (folder / "cut.parquet").write_bytes((folder / "rows.parquet").read_bytes()[:100])
    embedded, on_spark = both(spark, HuntOptions(paths=[str(folder), str(tmp_path / "missing")]))
    positions = {(Path(p.source).name, p.position) for p in embedded.problems}
    assert {("rows.parquet", "row 1"), ("rows.parquet", "row 2"), ("foreign.parquet", "file"),
            ("cut.parquet", "file"), ("lines.jsonl", "line 2"), ("empty.json", "file"), ("missing", "file")} <= positions  # fmt: skip
    assert any(name == "damaged.evtx" and pos.startswith("record") for name, pos in positions)
    assert_same(embedded, on_spark)


class _Unshippable:
    """A compiled rule that refuses to be pickled (as one holding a lock or a socket would)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __reduce__(self):
        raise TypeError("holds an open handle")


def test_a_rule_that_cannot_be_shipped_is_refused_not_skipped(spark, samples):
    from svchunt.spark.driver import run_spark_hunt

    options = HuntOptions(paths=[str(samples / "Lateral Movement")])
    ruleset = load_ruleset(options)
    embedded = run_hunt(options, ruleset)
    hit = next(a.rule.rule_id for a in embedded.alerts if a.kind == "detection")
    index = next(i for i, r in enumerate(ruleset.rules) if r.info.rule_id == hit)
    rules = list(ruleset.rules)
    rules[index] = LoadedRule(_Unshippable(rules[index].compiled), rules[index].info)  # type: ignore[arg-type]
    broken = RuleSet(rules, ruleset.correlation_docs, ruleset.refused, ruleset.files)
    result = run_spark_hunt(options, broken, session=spark)
    refusal = [r for r in result.refused if r.rule_id == hit]
    assert refusal and "cannot be shipped to Spark executors: holds an open handle" in refusal[0].reason
    assert result.stats.rules_loaded == embedded.stats.rules_loaded - 1
    assert not any(a.rule.rule_id == hit and a.kind == "detection" for a in result.alerts)
    others = [a.alert_id for a in embedded.alerts if a.rule.rule_id != hit and a.kind == "detection"]
    assert others and set(others) <= {a.alert_id for a in result.alerts}


def test_cli_writes_the_same_jsonl_case_file_and_report(spark, samples, tmp_path):
    from svchunt.cli.main import cli
    from svchunt.outputs.case import read_case
    from svchunt.outputs.html_report import build_payload

    target = str(samples / "Lateral Movement")
    out = {}
    for engine in ("embedded", "spark"):
        d = tmp_path / engine
        d.mkdir()
        args = ["hunt", target, "-q", "--jsonl", str(d / "a.jsonl"), "--case", str(d / "c.duckdb"),
                "--html", str(d / "r.html"), "--summary-json", str(d / "s.json")]  # fmt: skip
        if engine == "spark":
            args += ["--engine", "spark", "--spark-master", MASTER]
        r = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        out[engine] = d
    emb, spk = out["embedded"], out["spark"]
    assert (emb / "a.jsonl").read_bytes() == (spk / "a.jsonl").read_bytes() and (emb / "a.jsonl").stat().st_size
    case_e, case_s = read_case(str(emb / "c.duckdb")), read_case(str(spk / "c.duckdb"))
    assert [a.to_dict() for a in case_e.alerts] == [a.to_dict() for a in case_s.alerts]
    assert case_e.problems == case_s.problems and case_e.refused == case_s.refused

    def payload(result: HuntResult) -> dict:
        data = build_payload(result)
        data.pop("generated")
        data["summary"].pop("seconds")
        return data

    assert payload(case_e) == payload(case_s)
    summaries = [orjson.loads((d / "s.json").read_bytes()) for d in (emb, spk)]
    for s in summaries:
        s.pop("seconds")
    assert summaries[0] == summaries[1]
    html = (spk / "r.html").read_text()
    assert next(a for a in case_s.alerts).alert_id in html


def test_without_pyspark_or_java_the_cli_says_how_to_get_them():
    code = (
        "import sys, svchunt.spark.session as s;"
        "s.unavailable_reason = lambda: 'no Java runtime found: install openjdk-17-jre-headless';"
        "from svchunt.cli.main import cli; sys.argv=['svchunt','hunt','examples','--engine','spark','-q']; cli()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 2 and "--engine spark: no Java runtime found" in r.stderr
    r = subprocess.run([sys.executable, "-m", "svchunt.cli.main", "hunt", "examples", "--spark-master", MASTER],
                       capture_output=True, text=True, cwd=Path(__file__).parents[1])  # fmt: skip
    assert r.returncode == 2 and "--spark-master needs --engine spark" in r.stderr
