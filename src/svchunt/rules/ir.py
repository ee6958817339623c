"""The portable compiled form of a rule's detection: one small expression tree, two back ends.

The Python back end (`svchunt.engine.pyeval`) evaluates it over columnar batches; the SQL back end
(`svchunt.engine.sql`) turns it into SQL that DuckDB and Spark both run. Neither back end re-reads
Sigma: the semantics live here, once.

String values are stored case-folded unless `cased` is set, because Sigma matching is
case-insensitive by default and folding once at compile time is cheaper than per comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# String predicate kinds. `glob` is a Sigma pattern with inner wildcards, kept as a regex.
STR_KINDS = ("eq", "contains", "startswith", "endswith", "glob")


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Str:
    """`field` matches any of `values` in the way `kind` says (an OR of literals)."""

    field: str
    kind: str
    values: tuple[str, ...]
    cased: bool = False


@dataclass(frozen=True, slots=True)
class Regex:
    field: str
    pattern: str  # RE2 syntax; flags folded into the pattern as (?i) (?s) (?m)


@dataclass(frozen=True, slots=True)
class Glob:
    """A Sigma value with inner wildcards: `pattern` is an anchored RE2 regex (case-insensitive unless
    cased); `literals` are its wildcard-free pieces, kept so the prefilter can use them."""

    field: str
    pattern: str
    literals: tuple[str, ...]
    cased: bool = False


@dataclass(frozen=True, slots=True)
class Num:
    """Numeric comparison; `op` is eq, gt, gte, lt or lte. Strings holding numbers compare too."""

    field: str
    op: str
    value: float


@dataclass(frozen=True, slots=True)
class Cidr:
    field: str
    networks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    """`field|exists: true/false` — present with a non-empty value."""

    field: str


@dataclass(frozen=True, slots=True)
class IsNull:
    """`field: null` — absent or empty (SigmaHQ rules treat an empty string as absent)."""

    field: str


@dataclass(frozen=True, slots=True)
class FieldRef:
    """`field|fieldref: other` (and startswith/endswith/contains variants): compare two fields."""

    field: str
    other: str
    kind: str = "eq"
    cased: bool = False


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword search: any field value matches the string predicate."""

    kind: str
    values: tuple[str, ...]
    cased: bool = False


Node = And | Or | Not | Const | Str | Glob | Regex | Num | Cidr | Exists | IsNull | FieldRef | Keyword


@dataclass(frozen=True, slots=True)
class Route:
    """Where a rule's events can come from: a channel and, when known, the EventIDs."""

    channel: str | None  # None: any channel
    event_ids: tuple[int, ...] | None  # None: any EventID of the channel


@dataclass(slots=True)
class CompiledRule:
    rule_id: str
    condition: Node
    routes: tuple[Route, ...]
    fields: frozenset[str] = field(default_factory=frozenset)


def referenced_fields(node: Node) -> set[str]:
    """Every event field a condition reads (Keyword reads them all and is reported as '*')."""
    out: set[str] = set()
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, And | Or):
            stack.extend(n.children)
        elif isinstance(n, Not):
            stack.append(n.child)
        elif isinstance(n, Keyword):
            out.add("*")
        elif isinstance(n, FieldRef):
            out.update((n.field, n.other))
        elif isinstance(n, Const):
            pass
        else:
            out.add(n.field)
    return out


def simplify(node: Node) -> Node:
    """Flatten nested And/Or, fold constants, and merge same-field literal ORs into one predicate."""
    if isinstance(node, Not):
        child = simplify(node.child)
        if isinstance(child, Const):
            return Const(not child.value)
        if isinstance(child, Not):
            return child.child
        return Not(child)
    if not isinstance(node, And | Or):
        return node
    is_and = isinstance(node, And)
    flat: list[Node] = []
    for child in (simplify(c) for c in node.children):
        if isinstance(child, Const):
            if child.value != is_and:  # False in AND, True in OR decides the whole node
                return Const(child.value)
            continue
        if type(child) is type(node):
            flat.extend(child.children)  # type: ignore[union-attr]
        else:
            flat.append(child)
    if not is_and:
        flat = _merge_literal_ors(flat)
    if not flat:
        return Const(is_and)
    if len(flat) == 1:
        return flat[0]
    return And(tuple(flat)) if is_and else Or(tuple(flat))


def _merge_literal_ors(children: list[Node]) -> list[Node]:
    merged: dict[tuple, dict[str, None]] = {}  # dict as an ordered set: hash lists can be long
    order: list[object] = []
    for child in children:
        if isinstance(child, Str | Keyword):
            key = (type(child), getattr(child, "field", None), child.kind, child.cased)
            if key not in merged:
                merged[key] = {}
                order.append(key)
            merged[key].update(dict.fromkeys(child.values))
        else:
            order.append(child)
    out: list[Node] = []
    for item in order:
        if isinstance(item, tuple):
            cls, fname, kind, cased = item
            values = tuple(merged[item])
            out.append(Str(fname, kind, values, cased) if cls is Str else Keyword(kind, values, cased))
        else:
            out.append(item)  # type: ignore[arg-type]
    return out
