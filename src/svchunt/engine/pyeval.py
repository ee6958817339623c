"""Python back end: IR → functions that select matching rows of a ColumnBatch.

Each compiled node takes the candidate rows and returns the subset that matches (a selection
vector). AND narrows the candidates child by child, cheapest first, so most predicates only see
the few rows that survived; leaves are single list comprehensions over one column.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import ahocorasick
import re2

from svchunt.engine.batch import ColumnBatch
from svchunt.rules import ir
from svchunt.values import INT_MAX, INT_MIN, elements, fold, keyword_values, numbers, present

Select = Callable[[ColumnBatch, list[int]], list[int]]
Pred = Callable[[Any], bool]

# Above this many needles, substring search switches to one Aho-Corasick automaton.
AUTOMATON_MIN = 6
# Below this many candidate rows, memoising predicate results per value costs more than it saves.
MEMO_MIN_ROWS = 32


def re2_test(pattern: str) -> Pred:
    """A linear-time `search(text) is not None` for one RE2 pattern.

    google-re2's `search` builds match objects and maps byte offsets back to characters in Python,
    which costs more than the match itself; a yes/no test needs neither, so call RE2 directly and
    fall back to the public API should the binding's internals ever change.
    """
    compiled = re2.compile(pattern)
    inner = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    null = getattr(re2, "_NULL_SPAN", None)
    if inner is None or anchor is None or null is None or not hasattr(inner, "Match"):
        return lambda text: compiled.search(text) is not None
    match = inner.Match

    def test(text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return match(anchor, data, 0, len(data))[0] != null

    return test


def compile_condition(node: ir.Node) -> Select:
    return _compile(node)


def _compile(node: ir.Node) -> Select:
    if isinstance(node, ir.And):
        parts = [_compile(c) for c in sorted(node.children, key=_cost)]

        def select_and(batch: ColumnBatch, rows: list[int]) -> list[int]:
            for part in parts:
                rows = part(batch, rows)
                if not rows:
                    break
            return rows

        return select_and
    if isinstance(node, ir.Or):
        parts = [_compile(c) for c in sorted(node.children, key=_cost)]

        def select_or(batch: ColumnBatch, rows: list[int]) -> list[int]:
            hit: set[int] = set()
            remaining = rows
            for part in parts:
                found = part(batch, remaining)
                if found:
                    hit.update(found)
                    remaining = [r for r in remaining if r not in hit]
                    if not remaining:
                        break
            return [r for r in rows if r in hit]

        return select_or
    if isinstance(node, ir.Not):
        inner = _compile(node.child)

        def select_not(batch: ColumnBatch, rows: list[int]) -> list[int]:
            drop = set(inner(batch, rows))
            return [r for r in rows if r not in drop] if drop else rows

        return select_not
    if isinstance(node, ir.Const):
        return (lambda batch, rows: rows) if node.value else (lambda batch, rows: [])
    if isinstance(node, ir.Str) and not node.cased:
        return _folded_str(node)
    if isinstance(node, ir.Keyword):
        return _keyword(node)
    if isinstance(node, ir.FieldRef):
        return _fieldref(node)
    return _raw_leaf(node.field, _value_pred(node))  # type: ignore[union-attr]


def _cost(node: ir.Node) -> int:
    """Rough evaluation order: cheap and selective first, negations and full scans last."""
    if isinstance(node, ir.Num):
        return 0
    if isinstance(node, ir.Str):
        return {"eq": 1, "endswith": 2, "startswith": 2, "contains": 3}.get(node.kind, 5) + (len(node.values) > 20)
    if isinstance(node, ir.Exists | ir.IsNull):
        return 4
    if isinstance(node, ir.Glob | ir.Regex | ir.Cidr | ir.FieldRef):
        return 6
    if isinstance(node, ir.And | ir.Or):
        return 5 + min((_cost(c) for c in node.children), default=0)
    if isinstance(node, ir.Keyword):
        return 9
    return 10  # Not


def string_pred(kind: str, values: tuple[str, ...]) -> Pred:
    """A predicate on one (already folded, unless cased) string value."""
    if kind == "eq":
        if len(values) == 1:
            v0 = values[0]
            return lambda v: v == v0
        vs = frozenset(values)
        return lambda v: v in vs
    if kind == "startswith":
        return lambda v: v.startswith(values)
    if kind == "endswith":
        return lambda v: v.endswith(values)
    if kind == "contains":
        if len(values) == 1:
            n0 = values[0]
            return lambda v: n0 in v
        if len(values) < AUTOMATON_MIN or any(not x for x in values):
            return lambda v: any(n in v for n in values)
        automaton = ahocorasick.Automaton()
        for i, needle in enumerate(values):
            automaton.add_word(needle, i)
        automaton.make_automaton()
        return lambda v: next(automaton.iter(v), None) is not None
    raise ValueError(f"unknown string predicate {kind}")


def _on_lists(pred: Pred) -> Pred:
    return lambda v: any(pred(x) for x in v) if type(v) is tuple else pred(v)


def _folded_str(node: ir.Str) -> Select:
    pred = string_pred(node.kind, node.values)
    field = node.field
    if node.kind == "eq":
        vs = frozenset(node.values)
        single = node.values[0] if len(node.values) == 1 else None

        def select_eq(batch: ColumnBatch, rows: list[int]) -> list[int]:
            col = batch.folded(field)
            if batch.has_lists(field):
                p = _on_lists(pred)
                return [r for r in rows if (v := col[r]) is not None and p(v)]
            if single is not None:
                return [r for r in rows if col[r] == single]
            return [r for r in rows if col[r] in vs]

        return select_eq
    if node.kind == "contains" and len(node.values) == 1:
        needle = node.values[0]

        def select_contains(batch: ColumnBatch, rows: list[int]) -> list[int]:
            col = batch.folded(field)
            if batch.has_lists(field):
                p = _on_lists(pred)
                return [r for r in rows if (v := col[r]) is not None and p(v)]
            return [r for r in rows if (v := col[r]) is not None and needle in v]

        return select_contains
    if node.kind == "endswith":
        suffixes = node.values

        def select_endswith(batch: ColumnBatch, rows: list[int]) -> list[int]:
            col = batch.folded(field)
            if batch.has_lists(field):
                p = _on_lists(pred)
                return [r for r in rows if (v := col[r]) is not None and p(v)]
            return [r for r in rows if (v := col[r]) is not None and v.endswith(suffixes)]

        return select_endswith

    def select_str(batch: ColumnBatch, rows: list[int]) -> list[int]:
        col = batch.folded(field)
        p = _on_lists(pred) if batch.has_lists(field) else pred
        return [r for r in rows if (v := col[r]) is not None and p(v)]

    return select_str


def _raw_leaf(field: str, pred: Pred) -> Select:
    def select_raw(batch: ColumnBatch, rows: list[int]) -> list[int]:
        col = batch.raw(field)
        if len(rows) < MEMO_MIN_ROWS:
            return [r for r in rows if pred(col[r])]
        # Regexes, numbers and CIDRs are the costly predicates; field values repeat, so decide
        # each distinct value once per batch.
        # Keyed with the type beside non-text values: True, 1 and 1.0 are equal dict keys but have
        # different texts ("true", "1", "1.0").
        memo: dict[Any, bool] = {}
        out = []
        for r in rows:
            v = col[r]
            key = v if type(v) is str else (type(v), v)
            try:
                hit = memo[key]
            except KeyError:
                hit = memo[key] = pred(v)
            except TypeError:  # a list value: not hashable, decide it directly
                hit = pred(v)
            if hit:
                out.append(r)
        return out

    return select_raw


def _value_pred(node: ir.Node) -> Pred:
    """Predicates over raw values (None included): cased strings, numbers, regex, CIDR, exists, null.

    Non-text values are matched through `values.to_text`, a list element by element (as the SQL back end).
    """
    if isinstance(node, ir.Str):  # cased
        p = string_pred(node.kind, node.values)
        return lambda v: p(v) if type(v) is str else any(p(t) for t in elements(v))
    if isinstance(node, ir.Num):
        return _num_pred(node)
    if isinstance(node, ir.Regex | ir.Glob):
        test = re2_test(node.pattern)
        return lambda v: test(v) if type(v) is str else any(test(t) for t in elements(v))
    if isinstance(node, ir.Cidr):
        nets = [ipaddress.ip_network(n, strict=False) for n in node.networks]
        return lambda v: any(_in_networks(t, nets) for t in elements(v))
    if isinstance(node, ir.Exists):
        return present
    if isinstance(node, ir.IsNull):
        return lambda v: not present(v)
    raise ValueError(f"no value predicate for {type(node).__name__}")


def _num_pred(node: ir.Num) -> Pred:
    # Compared as doubles (`values.numbers`): the SQL back end compares DOUBLE columns, so both agree
    # even on integers wider than 53 bits.
    target = node.value
    compare = {
        "eq": lambda n: n == target,
        "gt": lambda n: n > target,
        "gte": lambda n: n >= target,
        "lt": lambda n: n < target,
        "lte": lambda n: n <= target,
    }[node.op]
    def pred(v: Any) -> bool:
        if type(v) is int and INT_MIN <= v <= INT_MAX:  # the common case, without the general parser
            return compare(float(v))
        return v is not None and any(compare(n) for n in numbers(v))

    return pred


def _in_networks(text: str, nets: list) -> bool:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return any(addr in net for net in nets)


def _keyword(node: ir.Keyword) -> Select:
    # A keyword matches when one value of the event does (`values.keyword_values`). For `contains`, one
    # linear-time RE2 alternation over the NUL-joined text is the same test, as long as no literal holds
    # a NUL that could bridge two values.
    if node.kind != "contains" or any("\0" in v for v in node.values):
        return _keyword_per_value(node)
    test = re2_test("(?:" + "|".join(re2.escape(v) for v in node.values) + ")")
    cased = node.cased

    def select_keyword(batch: ColumnBatch, rows: list[int]) -> list[int]:
        text = batch.fulltext if cased else batch.fulltext_folded
        return [r for r in rows if test(text(r))]

    return select_keyword


def _keyword_per_value(node: ir.Keyword) -> Select:
    pred = string_pred(node.kind, node.values)
    cased = node.cased

    def matches(fields: dict[str, Any]) -> bool:
        texts = keyword_values(fields)
        return any(pred(t) for t in texts) if cased else any(pred(t.lower()) for t in texts)

    def select_keyword(batch: ColumnBatch, rows: list[int]) -> list[int]:
        events = batch.events
        return [r for r in rows if matches(events[r].fields)]

    return select_keyword


def _fieldref(node: ir.FieldRef) -> Select:
    """Two fields compared as text (folded unless cased); a list side matches when one element does."""
    kind = node.kind

    def texts(value: Any) -> tuple[str, ...]:
        if node.cased:
            return tuple(elements(value))
        folded = fold(value)
        return () if folded is None else folded if type(folded) is tuple else (folded,)

    def pair(x: str, y: str) -> bool:
        if kind == "eq":
            return x == y
        if kind == "startswith":
            return x.startswith(y)
        if kind == "endswith":
            return x.endswith(y)
        return y in x

    def select_ref(batch: ColumnBatch, rows: list[int]) -> list[int]:
        a = batch.raw(node.field)
        b = batch.raw(node.other)
        out = []
        for r in rows:
            x, y = a[r], b[r]
            if x is None or y is None:
                continue
            if any(pair(s, t) for s in texts(x) for t in texts(y)):
                out.append(r)
        return out

    return select_ref
