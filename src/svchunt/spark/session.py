"""Getting a SparkSession: locally for `--spark-master local[N]`, or the one spark-submit / Databricks gives."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

LOCAL_DEFAULT = "local[*]"
# Spark's Arrow batches; the embedded engine matches 8,192 events at a time, Spark's default is 10,000.
ARROW_BATCH_ROWS = 8192


class SparkUnavailable(RuntimeError):
    """pyspark or Java is missing: `--engine spark` cannot run here (the message says how to fix it)."""


def unavailable_reason() -> str | None:
    """Why Spark cannot start on this machine, or None when pyspark and a Java runtime are there."""
    try:
        import pyspark  # noqa: F401
        import pyspark.sql.pandas.utils as checks

        checks.require_minimum_pandas_version()
        checks.require_minimum_pyarrow_version()
    except ImportError as exc:
        return f"pyspark is not installed ({exc}): pip install 'svchunt[spark]'"
    except Exception as exc:  # pyspark's own "package not installed / too old" errors
        return f"pyspark cannot use Arrow here ({exc}): pip install 'svchunt[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and os.path.exists(os.path.join(java_home, "bin", "java")))):
        return "no Java runtime found (java on PATH or JAVA_HOME): install Java 17, e.g. openjdk-17-jre-headless"
    return None


def _submitted() -> bool:
    """Started by spark-submit / pyspark shell / Databricks: the session and its master already exist."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_session(master: str | None = None) -> Any:
    """The active session, or a new one on `master` (default: the submitted master, else local[*])."""
    reason = unavailable_reason()
    if reason:
        raise SparkUnavailable(reason)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and (master is None or active.sparkContext.master == master):
        return active
    if active is not None:
        active.stop()
    local = master is None and not _submitted() or (master or "").startswith("local")
    if local:
        # Local Python workers must be this interpreter (the one svchunt is installed in), not `python3`.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("svchunt")
    if master is not None:
        builder = builder.master(master)
    elif local:
        builder = builder.master(LOCAL_DEFAULT)
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    # A corrupt file must fail the run loudly, never be skipped without a word.
    builder = builder.config("spark.sql.files.ignoreCorruptFiles", "false")
    if local:
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        # The driver has listed the local files already; a Spark job to list them again costs seconds.
        builder = builder.config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000000")
    session = builder.getOrCreate()
    if local:
        session.sparkContext.setLogLevel("ERROR")
    return session
