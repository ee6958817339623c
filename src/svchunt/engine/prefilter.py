"""Literal prefilter: one Aho-Corasick pass per field tells which rules can possibly match a row.

Most rules require at least one of a few literals in some field (`Image|endswith: '\\psexec.exe'`
needs `\\psexec.exe` somewhere in Image), or at least a field's presence (`ServiceCommandBinPath|exists`).
For each group of events we scan every prefiltered field once with an automaton of all such literals
(and each presence field once), and a rule is evaluated only on the rows where one of its alternatives
occurred. This is a necessary condition only, so the full condition still decides: the
prefilter can make a rule cheaper, never change its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

from svchunt.engine.batch import ColumnBatch, fold
from svchunt.engine.json_keywords import JsonKeywords, json_keywords
from svchunt.rules import ir
from svchunt.values import keyword_text, present

MIN_LITERAL = 3  # shorter literals match almost everywhere and only slow the scan down

# Alternatives, at least one of which holds in every matching event: (field, folded literal) for a literal
# in the field, (field, PRESENT) for the field present with a non-empty value (`values.present`).
PRESENT = None
# The field of a need on keyword text (`ColumnBatch.fulltext_folded`, `values.keyword_text`): every value.
KEYWORDS = "\0keywords"
_KEYWORD_KINDS = frozenset({"contains", "startswith", "endswith", "eq"})
Need = tuple[tuple[str, str | None], ...]


def _usable(literal: str) -> bool:
    # Bytes, not characters: a single emoji is as rare as three ASCII letters, and a single Cyrillic or Greek
    # letter (two bytes) in a Windows log as rare as an ASCII pair is common (SigmaHQ's homoglyph rules).
    size = len(literal.encode("utf-8"))
    return size >= MIN_LITERAL or (size == MIN_LITERAL - 1 and not literal.isascii())


def necessary_literals(node: ir.Node) -> Need | None:
    """A set of (field, literal) or (field, PRESENT) of which at least one holds in every matching event,
    or None."""
    if isinstance(node, ir.Exists):
        return ((node.field, PRESENT),)
    if isinstance(node, ir.Keyword):
        # every kind of keyword match holds its literal within one value: within the keyword text
        if node.kind not in _KEYWORD_KINDS or not node.values or not all(_usable(v) for v in node.values):
            return None
        return tuple((KEYWORDS, v.lower()) for v in node.values)
    if isinstance(node, ir.Str):
        if node.field == "*" or not node.values or not all(_usable(v) for v in node.values):
            return None
        return tuple((node.field, v.lower()) for v in node.values)
    if isinstance(node, ir.Glob):
        best = max(node.literals, key=len, default="")
        return ((node.field, best.lower()),) if _usable(best) else None
    if isinstance(node, ir.Regex):
        best = regex_literal(node.pattern)
        return ((node.field, best.lower()),) if best and _usable(best) else None
    if isinstance(node, ir.And):
        options = [n for n in (necessary_literals(c) for c in node.children) if n is not None]
        return max(options, key=_quality) if options else None
    if isinstance(node, ir.Or):
        out: list[tuple[str, str | None]] = []
        for child in node.children:
            need = necessary_literals(child)
            if need is None:
                return None
            out.extend(need)
        return tuple(dict.fromkeys(out))
    return None


# Clauses kept per rule: each more narrows the rows its rule is evaluated on, and costs an intersection.
MAX_CLAUSES = 4


def necessary_clauses(node: ir.Node) -> tuple[Need, ...]:
    """Needs that all hold in every matching event (the children of an AND each give theirs), best first
    (`_quality`), at most MAX_CLAUSES; () where there is none. The first is `necessary_literals`'s choice
    for an AND of leaves, and the one a record is tested on before batching (`Matcher.record_filter`)."""
    if isinstance(node, ir.And):
        found: list[Need] = []
        for child in node.children:
            found.extend(necessary_clauses(child))
        unique = list(dict.fromkeys(found))
        return tuple(sorted(unique, key=_quality, reverse=True)[:MAX_CLAUSES])
    need = necessary_literals(node)
    return () if need is None else (need,)


def _quality(need: Need) -> tuple[int, int]:
    # Prefer long shortest literals (rare matches), then fewer alternatives; a presence last of all.
    return (min(len(lit) if lit is not None else 0 for _, lit in need), -len(need))


@dataclass
class Prefilter:
    """Per route plan: automata per field over the literals of the plan's rules, and the presence fields."""

    automata: dict[str, ahocorasick.Automaton]
    # rule index -> its clauses (`necessary_clauses`), each the literal ids of which one must occur
    rule_clauses: dict[int, tuple[tuple[int, ...], ...]]
    literal_rules: dict[int, list[int]]  # literal id -> rule indexes that need it
    presence: dict[str, int]  # field -> the literal id of its presence
    # the keyword literals' test of an event's JSON text (`Event.text`), where there is one, and the fields
    # derivation may write on the group's events, which no such text holds (`RawPrefilter`)
    json: JsonKeywords | None = None
    written: tuple[str, ...] = ()

    @property
    def fields(self) -> set[str]:
        return set(self.automata) | set(self.presence)

    @classmethod
    def build(cls, needs: dict[int, tuple[Need, ...]], written: Iterable[str] = ()) -> Prefilter:
        """`needs`: rule index -> its clauses (each a `Need`, at least one)."""
        ids: dict[tuple[str, str | None], int] = {}
        rule_clauses: dict[int, tuple[tuple[int, ...], ...]] = {}
        literal_rules: dict[int, list[int]] = {}
        for rule, clauses in needs.items():
            refs: list[tuple[int, ...]] = []
            for need in clauses:
                lids = tuple(dict.fromkeys(ids.setdefault(alt, len(ids)) for alt in need))
                refs.append(lids)
                for lid in lids:
                    rules = literal_rules.setdefault(lid, [])
                    if not rules or rules[-1] != rule:
                        rules.append(rule)
            rule_clauses[rule] = tuple(refs)
        automata: dict[str, ahocorasick.Automaton] = {}
        presence: dict[str, int] = {}
        for (fname, lit), lid in ids.items():
            if lit is PRESENT:
                presence[fname] = lid
                continue
            automaton = automata.get(fname)
            if automaton is None:
                automaton = automata[fname] = ahocorasick.Automaton()
            automaton.add_word(lit, lid)
        for automaton in automata.values():
            automaton.make_automaton()
        keywords = automata.get(KEYWORDS)
        json = json_keywords(keywords.keys()) if keywords is not None else None
        return cls(automata, rule_clauses, literal_rules, presence, json, tuple(sorted(written)))

    def scan(self, batch: ColumnBatch) -> dict[int, list[int]]:
        """literal id -> rows (ascending, unique) where it occurs in its field.

        Log fields repeat a lot (the same Image, ParentImage, service path over and over), so the
        literals found in each distinct value are remembered for the batch.
        """
        hits: dict[int, list[int]] = {}
        empty: tuple[int, ...] = ()
        for fname, automaton in self.automata.items():
            if fname == KEYWORDS:
                self._scan_keywords(batch, automaton, hits)
                continue
            memo: dict[object, tuple[int, ...]] = {}
            for r, value in enumerate(batch.folded(fname)):
                if value is None:
                    continue
                found = memo.get(value)
                if found is None:
                    lids = {lid for text in (value if type(value) is tuple else (value,)) for _, lid in automaton.iter(text)}
                    found = memo[value] = tuple(lids) if lids else empty
                for lid in found:
                    rows = hits.get(lid)
                    if rows is None:
                        hits[lid] = [r]
                    else:
                        rows.append(r)
        for fname, lid in self.presence.items():
            # the raw column, as `Exists` reads it: the folded text of a number would be present all the same
            found_rows = [r for r, value in enumerate(batch.raw(fname)) if value is not None and present(value)]
            if found_rows:
                hits[lid] = found_rows
        return hits

    def _scan_keywords(self, batch: ColumnBatch, automaton: ahocorasick.Automaton, hits: dict[int, list[int]]) -> None:
        # one text per event, rarely repeated: nothing worth remembering; an event's JSON text, where it
        # has one, says first whether any literal can be in it (then its own text says which)
        json, written = self.json, self.written
        for r, event in enumerate(batch.events):
            text = event.text
            if json is not None and text is not None and keywords_ruled_out(json, text, event.fields, written, automaton):
                continue
            for lid in {lid for _, lid in automaton.iter(batch.fulltext_folded(r))}:
                rows = hits.get(lid)
                if rows is None:
                    hits[lid] = [r]
                else:
                    rows.append(r)

    def active_rules(self, hits: dict[int, list[int]]) -> set[int]:
        """Rules with a literal hit: the only prefiltered rules worth evaluating (`candidates` then tells
        whether each of their clauses has one)."""
        active: set[int] = set()
        literal_rules = self.literal_rules
        for lid in hits:
            active.update(literal_rules[lid])
        return active

    def candidates(self, rule: int, hits: dict[int, list[int]]) -> list[int]:
        """The rows (ascending) where every clause of the rule has a literal."""
        clauses = self.rule_clauses[rule]
        found: set[int] | None = None
        for lids in clauses:
            if len(lids) == 1:
                rows = hits.get(lids[0])
                if not rows:
                    return []
                if found is None:
                    if len(clauses) == 1:
                        return rows  # already ascending and unique
                    found = set(rows)
                else:
                    found.intersection_update(rows)
            else:
                either: set[int] = set()
                for lid in lids:
                    rows = hits.get(lid)
                    if rows:
                        either.update(rows)
                if found is None:
                    found = either
                else:
                    found &= either
            if not found:
                return []
        return sorted(found) if found else []


# What a RawPrefilter remembers, bounded against hostile input (endless distinct values or key lists): the
# answer for values up to MEMO_TEXT characters, MAX_MEMO of them in all its fields (then it starts over, at
# most ~1 MiB of text), and the field layout of up to MAX_LAYOUTS key lists of up to LAYOUT_KEYS keys.
MEMO_TEXT = 256
MAX_MEMO = 4096
MAX_LAYOUTS = 1024
LAYOUT_KEYS = 128


class RawPrefilter:
    """`Prefilter.scan` for one record, before it is batched: True when none of the literals occurs in its
    fields, none of the presence fields is present and no keyword literal occurs in any value, so no rule
    of the plan can match it. Only for plans whose rules all have a need (see `Matcher.record_filter`).

    `normalised` False: asked with the raw EventData, which holds every needed field as the normalised
    event does (or, with a `gate`, every needed field that derivation will not write on it); True: asked
    with the normalised fields (needs on derived or header fields, or keywords).

    Field names are compared as the batch does, ignoring case; where a record spells one several ways,
    every spelling is scanned (a hit in any sends the record to the full path, which then decides).
    """

    __slots__ = (
        "_by_name", "_layouts", "_memos", "_remembered", "_keywords", "_json", "_written", "_gate", "_gated",
        "normalised",
    )  # fmt: skip

    def __init__(
        self,
        prefilter: Prefilter,
        normalised: bool = False,
        gate: Callable[[dict[str, Any]], frozenset[str]] | None = None,
        gated: frozenset[str] = frozenset(),
    ):
        automata, presence = prefilter.automata, prefilter.presence
        by_name: dict[str, list[ahocorasick.Automaton]] = {}
        for name, automaton in automata.items():
            if name != KEYWORDS:
                by_name.setdefault(name.lower(), []).append(automaton)
        present_names = {name.lower() for name in presence}
        self._by_name = {
            name: (tuple(by_name.get(name, ())), name in present_names) for name in set(by_name) | present_names
        }
        self._memos: dict[str, dict[str, bool]] = {name: {} for name in self._by_name}
        self._remembered = 0
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, tuple[ahocorasick.Automaton, ...], bool, dict[str, bool]], ...]] = {}
        self._keywords = keywords = automata.get(KEYWORDS)
        # keywords asked of the record's JSON text where they can be (`Prefilter.json`): then also of the
        # fields derivation may write on the group's events (exact names), which no raw text holds
        self._json = prefilter.json
        self._written = prefilter.written
        self.normalised = normalised or (keywords is not None and (self._json is None or bool(self._written)))
        # raw test of a plan that needs derived fields (`gated`, lower-cased): `gate` says from the raw
        # fields which of them derivation may write (`normalise.derived.GATES`); if one, only the full path
        self._gate = gate
        self._gated = gated

    def __call__(self, data: dict[str, Any] | None, text: str | None = None) -> bool:
        """`text`: see `model.RecordSkip`; a raw test with keywords needs it."""
        if data is None:
            # header fields only, none of them a plan field; keywords search them too
            return self._keywords is None or self._keywords_absent(None, text)
        if self._gate is not None and not self._gated.isdisjoint(self._gate(data)):
            return False
        keys = tuple(data)
        layout = self._layouts.get(keys)
        if layout is None:
            layout = self._layout(keys)
        for key, automata, presence, memo in layout:
            value = data[key]
            if value is None:
                continue
            if type(value) is str:
                found = memo.get(value)
                if found is None:
                    found = (presence and value != "") or _occurs(value.lower(), automata)
                    if len(value) <= MEMO_TEXT:
                        self._remember(memo, value, found)
            elif presence and present(value):
                found = True
            else:  # numbers are not remembered: 1, 1.0 and True are one dict key but three texts
                folded = fold(value)
                if folded is None:
                    found = False
                elif type(folded) is tuple:  # a list, in normalised fields: element by element, as the batch
                    found = any(_occurs(t, automata) for t in folded)
                else:
                    found = _occurs(folded, automata)
            if found:
                return False
        return self._keywords is None or self._keywords_absent(data, text)

    def _keywords_absent(self, data: dict[str, Any] | None, text: str | None) -> bool:
        keywords = self._keywords
        if keywords is None:
            return True
        if text is None or self._json is None:
            # the exact test, of the normalised fields (never of raw EventData alone: headers are values too)
            return data is not None and next(keywords.iter(keyword_text(data).lower()), None) is None
        return keywords_ruled_out(self._json, text, data, self._written, keywords)

    def _remember(self, memo: dict[str, bool], value: str, found: bool) -> None:
        if self._remembered >= MAX_MEMO:
            for each in self._memos.values():
                each.clear()
            self._remembered = 0
        memo[value] = found
        self._remembered += 1

    def _layout(
        self, keys: tuple[str, ...]
    ) -> tuple[tuple[str, tuple[ahocorasick.Automaton, ...], bool, dict[str, bool]], ...]:
        by_name, memos = self._by_name, self._memos
        layout = tuple((key, *by_name[low], memos[low]) for key in keys if (low := key.lower()) in by_name)
        if len(keys) <= LAYOUT_KEYS:
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[keys] = layout
        return layout


def keywords_ruled_out(
    json: JsonKeywords, text: str, fields: dict[str, Any] | None, written: tuple[str, ...], automaton: ahocorasick.Automaton
) -> bool:
    """True when no keyword literal (`automaton`) can be in the event: none in its JSON text (`Event.text`),
    and none in the `written` fields derivation gave it (which no such text holds)."""
    return json.absent(text) and (fields is None or not _written_hit(fields, written, automaton))


def _written_hit(fields: dict[str, Any], written: tuple[str, ...], automaton: ahocorasick.Automaton) -> bool:
    for name in written:
        value = fields.get(name)
        if value is None:
            continue
        text = fold(value)
        for each in text if type(text) is tuple else () if text is None else (text,):
            if next(automaton.iter(each), None) is not None:
                return True
    return False


class SkipAny:
    """The test of a group no rule meets: every record may be counted without normalising it."""

    __slots__ = ()
    normalised = False

    def __call__(self, data: object, text: str | None = None) -> bool:
        return True


SKIP_ANY = SkipAny()


class KeepAll:
    """The test of a group with a rule that has no need: no record can be skipped (asked normalised, so
    that the reader gives its events their `Event.text`)."""

    __slots__ = ()
    normalised = True

    def __call__(self, data: object, text: str | None = None) -> bool:
        return False


KEEP_ALL = KeepAll()


def _occurs(text: str, automata: tuple[ahocorasick.Automaton, ...]) -> bool:
    return any(next(automaton.iter(text), None) is not None for automaton in automata)


_REGEX_ESCAPES_LITERAL = set("\\.^$|?*+()[]{}/-#&~ '\"<>:;,=!@%")


def regex_literal(pattern: str) -> str | None:
    """The longest piece of plain text every match of `pattern` must contain, or None.

    Deliberately conservative: only top-level text outside groups and classes, and nothing at all
    when the pattern has a top-level alternation.
    """
    if pattern.startswith("(?") and ")" in pattern and pattern[2:pattern.index(")")].isalpha():
        pattern = pattern[pattern.index(")") + 1 :]  # leading inline flags such as (?i)
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i = 0
    n = len(pattern)

    def cut() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if depth == 0 and nxt in _REGEX_ESCAPES_LITERAL:
                piece = nxt
            else:
                cut()
                piece = None
            i += 2
        elif c == "[":
            cut()
            j = i + 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            piece = None
        elif c == "(":
            cut()
            depth += 1
            i += 1
            piece = None
        elif c == ")":
            cut()
            depth -= 1
            i += 1
            piece = None
        elif c == "|":
            if depth == 0:
                return None
            i += 1
            piece = None
        elif c in ".^$":
            cut()
            i += 1
            piece = None
        elif c in "?*{":
            if run:
                run.pop()  # the previous character is optional or repeated: not required as text
            cut()
            if c == "{":
                close = pattern.find("}", i)
                i = n if close < 0 else close + 1
            else:
                i += 1
            piece = None
        elif c == "+":
            cut()
            i += 1
            piece = None
        else:
            piece = c if depth == 0 else None
            if depth:
                cut()
            i += 1
        if piece is not None:
            # A quantifier after this character makes it optional: look ahead before keeping it.
            if i < n and pattern[i] in "?*{":
                cut()
            else:
                run.append(piece)
    cut()
    return max(runs, key=len) if runs else None
