"""svchunt.correlate: Sigma correlation rules (spec v2.1.0) over the rule engine's signals, plus the
`absence` extension. The stateful "new service" baseline lives in `svchunt.correlate.baseline` (imported
on demand: it needs DuckDB)."""

from svchunt.correlate.engine import Correlator
from svchunt.correlate.load import load_correlations
from svchunt.correlate.rule import CorrelationRule

__all__ = ["Correlator", "CorrelationRule", "load_correlations"]
