"""`svchunt watch` — the rules and correlations of `hunt`, on event streams, in real time."""

from __future__ import annotations

import math
import os
import signal
import sys

import click

from svchunt.model import LEVELS


def _host_port(value: str, option: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    try:
        number = int(port)
    except ValueError as exc:
        raise click.BadParameter(f"'{value}' is not [HOST:]PORT", param_hint=option) from exc
    return host.strip("[]") or default_host, number


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str, option: str) -> float:
    """`3600`, `90s`, `30m`, `12h`, `7d` -> seconds (> 0)."""
    text = value.strip().lower()
    factor = _UNITS.get(text[-1:], None)
    try:
        number = float(text[:-1] if factor else text) * (factor or 1)
    except ValueError as exc:
        raise click.BadParameter(f"'{value}' is not a duration such as 30, 90s, 30m, 12h or 7d", param_hint=option) from exc
    if math.isnan(number) or number <= 0:
        raise click.BadParameter(f"'{value}' must be more than zero", param_hint=option)
    return number


def _lateness(value: str) -> float:
    number = float(value)
    if math.isnan(number) or number < 0:
        raise click.BadParameter("lateness is a number of seconds >= 0 (or 'inf')", param_hint="--lateness")
    return number


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--stdin", "use_stdin", is_flag=True, help="Read JSON lines from standard input.")
@click.option("--http", "http_bind", help="[HOST:]PORT for POSTs of JSON lines (default host 127.0.0.1).")
@click.option("--http-token", envvar="SVCHUNT_HTTP_TOKEN", help="Bearer token for --http (required off loopback; env SVCHUNT_HTTP_TOKEN).")
@click.option("--http-max-body", type=int, default=16 << 20, show_default=True, help="Largest POST body in bytes.")
@click.option("--syslog", "syslog_bind", help="[HOST:]PORT for syslog over TCP, one JSON event per message.")
@click.option("--redis", "redis_url", help="Redis URL, e.g. redis://127.0.0.1:6379/0.")
@click.option("--redis-key", "redis_keys", multiple=True, help="Redis list written by Beats/Logstash (repeatable; default filebeat).")
@click.option("--pattern", "patterns", multiple=True, help="File names followed in folders (default *.json *.jsonl *.ndjson).")
@click.option("--from-end", is_flag=True, help="Files with no saved position start at their end, not their start.")
@click.option("--jsonl", "jsonl_path", help="Append alerts as JSON lines to FILE.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Write alerts as JSON lines to standard output.")
@click.option("--webhook", "webhook_url", help="POST alerts to URL (queued on disk while it fails).")
@click.option("--webhook-token", envvar="SVCHUNT_WEBHOOK_TOKEN", help="Bearer token sent to --webhook.")
@click.option("--webhook-queue", help="Folder of the webhook disk queue (default: next to the state file).")
@click.option("--syslog-out", help="HOST:PORT of a syslog collector (TCP, RFC 5424, octet counting).")
@click.option("--case", "case_path", help="Append alerts to a DuckDB case file, as `hunt --case`.")
@click.option("--state", "state_path", default="svchunt-watch.state", show_default=True,
              help="State file: input positions, correlation windows, emitted alert ids.")
@click.option("--batch-size", type=int, default=5000, show_default=True, help="Largest micro-batch (records).")
@click.option("--flush-interval", type=float, default=0.5, show_default=True, help="Longest wait before a batch is processed (s).")
@click.option("--checkpoint-interval", type=float, default=1.0, show_default=True,
              help="Seconds between commits of positions and correlation state (acks wait for them).")
@click.option("--lateness", default="60", show_default=True, help="How late (s of event time) an event may arrive and still correlate; 'inf' for replays.")
@click.option("--idle-timeout", default="5", show_default=True,
              help="Seconds with nothing pending and nothing new after which an input stops holding the correlation "
              "watermark back; when every input is idle, waiting correlation windows are decided.")
@click.option("--dedupe-retention", default="7d", show_default=True,
              help="How long (event time behind the watermark; s, m, h or d) emitted alert ids are kept to drop repeats.")
@click.option("--once", is_flag=True, help="Read files and Redis lists to their current end, decide open windows, exit.")
@click.option("--max-line", type=int, default=1 << 20, show_default=True, help="Longest record in bytes; longer ones are skipped and counted.")
@click.option("--stats", "show_stats", is_flag=True, help="Log a stats line periodically and at exit.")
@click.option("--stats-interval", type=float, default=10.0, show_default=True, help="Seconds between stats lines.")
@click.option("--problems", "problems_path", help="Append every skipped record (source, position, reason) to FILE.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Sigma rule file or folder (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Do not load the built-in content.")
@click.option("--allowlist", "allowlists", multiple=True, help="Tuning file, as for hunt.")
@click.option("--min-level", type=click.Choice(LEVELS), help="Only alerts of this level or higher.")
@click.option("--no-cache", is_flag=True, help="Recompile every rule.")
@click.option("--quiet", "-q", is_flag=True, help="No log lines on standard error (stats still shown with --stats).")
def watch(**kw) -> None:
    """Detect service persistence and lateral movement in event streams as they arrive.

    PATHS are JSON-lines files or folders, followed as they grow (rotation and truncation handled).
    """
    from svchunt.engine.hunt import HuntOptions, load_ruleset
    from svchunt.outputs.sanitize import plain_text
    from svchunt.rules.allowlists import AllowlistError
    from svchunt.watch.input_file import DEFAULT_PATTERNS, FileFollower
    from svchunt.watch.pipeline import Watcher, WatchOptions

    quiet = kw["quiet"]

    def log(text: str) -> None:
        if not quiet or text.startswith("stats "):
            # log lines carry event data (sources, reasons): control and bidi characters shown as escapes
            sys.stderr.write(f"svchunt watch: {plain_text(text)}\n")
            sys.stderr.flush()

    paths = list(kw["paths"])
    if not (paths or kw["use_stdin"] or kw["http_bind"] or kw["syslog_bind"] or kw["redis_url"]):
        raise click.UsageError("no input: give PATHS, --stdin, --http, --syslog or --redis")
    if not (kw["jsonl_path"] or kw["to_stdout"] or kw["webhook_url"] or kw["syslog_out"] or kw["case_path"]):
        kw["to_stdout"] = True  # alerts must go somewhere
    if kw["no_builtin"] and not kw["rule_paths"]:
        raise click.UsageError("--no-builtin leaves no rules: pass --rules PATH")
    options = HuntOptions(paths=[], rule_paths=list(kw["rule_paths"]), builtin=not kw["no_builtin"],
                          allowlists=list(kw["allowlists"]), use_cache=not kw["no_cache"])
    try:
        ruleset = load_ruleset(options)
    except AllowlistError as exc:
        raise click.UsageError(str(exc)) from exc
    if not ruleset.rules:
        raise click.UsageError("no rule could be loaded (see `svchunt rules check`)")

    max_line = kw["max_line"]
    inputs: list = []
    if paths:
        inputs.append(FileFollower(paths, tuple(kw["patterns"]) or DEFAULT_PATTERNS, max_line=max_line,
                                   once=kw["once"], from_end=kw["from_end"]))
    if kw["use_stdin"]:
        from svchunt.watch.input_stdin import StdinInput

        inputs.append(StdinInput(max_line=max_line))
    if kw["redis_url"]:
        from svchunt.watch.input_redis import RedisInput

        for key in kw["redis_keys"] or ("filebeat",):
            inputs.append(RedisInput(kw["redis_url"], key, max_line=max_line, once=kw["once"]))
    http = syslog_in = None
    if kw["http_bind"]:
        from svchunt.watch.input_http import HttpInput

        host, port = _host_port(kw["http_bind"], "--http")
        try:
            http = HttpInput(host, port, token=kw["http_token"], max_body=kw["http_max_body"], max_line=max_line, log=log)
        except ValueError as exc:
            raise click.UsageError(f"{exc} (--http-token or SVCHUNT_HTTP_TOKEN)") from exc
        inputs.append(http)
    if kw["syslog_bind"]:
        from svchunt.watch.input_syslog import SyslogInput

        host, port = _host_port(kw["syslog_bind"], "--syslog")
        syslog_in = SyslogInput(host, port, max_line=max_line, log=log)
        inputs.append(syslog_in)
    if kw["once"] and (http or syslog_in or kw["use_stdin"]):
        raise click.UsageError("--once reads files and Redis lists to their end; HTTP, syslog and stdin have no end")

    sinks: list = []
    if kw["jsonl_path"]:
        from svchunt.watch.sink_jsonl import JsonlSink

        sinks.append(JsonlSink(kw["jsonl_path"]))
    if kw["to_stdout"]:
        from svchunt.watch.sink_jsonl import StdoutSink

        sinks.append(StdoutSink())
    if kw["webhook_url"]:
        from svchunt.watch.sink_webhook import WebhookSink

        queue_dir = kw["webhook_queue"] or os.path.abspath(kw["state_path"]) + ".webhook-queue"
        sinks.append(WebhookSink(kw["webhook_url"], queue_dir, token=kw["webhook_token"], log=log))
    if kw["syslog_out"]:
        from svchunt.watch.sink_syslog import SyslogSink

        host, port = _host_port(kw["syslog_out"], "--syslog-out")
        sinks.append(SyslogSink(host, port, log=log))
    if kw["case_path"]:
        from svchunt.watch.sink_case import CaseSink

        sinks.append(CaseSink(kw["case_path"], {"paths": paths, "rules": list(kw["rule_paths"])}))

    watch_options = WatchOptions(
        state_path=kw["state_path"], batch_size=kw["batch_size"], flush_interval=kw["flush_interval"],
        lateness=_lateness(kw["lateness"]), min_level=kw["min_level"], checkpoint_interval=kw["checkpoint_interval"],
        stats_interval=kw["stats_interval"] if kw["show_stats"] else 0.0, problems_path=kw["problems_path"],
        idle_timeout=_duration(kw["idle_timeout"], "--idle-timeout"),
        dedupe_retention=_duration(kw["dedupe_retention"], "--dedupe-retention"),
    )
    watcher = Watcher(watch_options, ruleset, inputs, sinks, log=log)
    for refusal in watcher.refused:
        log(f"correlation refused: {refusal.path}: {refusal.reason}")
    if ruleset.refused:
        log(f"{len(ruleset.refused)} rule(s) refused (see `svchunt rules check`), e.g. "
            f"{ruleset.refused[0].path}: {ruleset.refused[0].reason}")

    def on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        log("stopping: finishing the current batch")
        watcher.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"{len(ruleset.rules)} rules, {len(watcher.detector.correlation_rules)} correlations; state {watch_options.state_path}")
    try:
        stats = _run(watcher, http, syslog_in, log)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    if kw["show_stats"]:
        import orjson

        log("stats " + orjson.dumps(stats.line()).decode())


def _run(watcher, http, syslog_in, log):
    import threading

    # inputs bind in watcher.run(); report the bound ports as soon as they are known (port 0 = any free one)
    def announce() -> None:
        for _ in range(100):
            if (http is None or http._server is not None) and (syslog_in is None or syslog_in._ready.is_set()):
                break
            threading.Event().wait(0.05)
        if http is not None and http._server is not None:
            log(f"listening for HTTP on {http.host}:{http.bound_port}")
        if syslog_in is not None and syslog_in._ready.is_set():
            log(f"listening for syslog on {syslog_in.host}:{syslog_in.bound_port}")

    if http or syslog_in:
        threading.Thread(target=announce, daemon=True).start()
    return watcher.run()
