"""Load Sigma rule files and folders into compiled rules, with a content-addressed cache.

pySigma needs seconds to parse a few thousand rules; the compiled form is cached under the hash of
each file's bytes (plus the compiler version and the allowlists), so a changed rule is recompiled
and an unchanged one never is — the cache can never serve a stale rule.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from svchunt.model import Refusal, RuleInfo
from svchunt.rules.allowlists import Allowlists, load_allowlists
from svchunt.rules.ir import CompiledRule

COMPILER_VERSION = "1"
# The cache is also keyed by the compiler's own source, so upgrading svchunt can never serve rules
# compiled by an older compiler.
_COMPILER_FILES = ("ir.py", "sigma_to_ir.py", "logsource.py", "loader.py", "allowlists.py")


def compiler_digest() -> str:
    h = hashlib.sha256(COMPILER_VERSION.encode())
    here = Path(__file__).resolve().parent
    for name in _COMPILER_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]
RULE_SUFFIXES = (".yml", ".yaml")


@dataclass
class LoadedRule:
    compiled: CompiledRule
    info: RuleInfo


@dataclass
class RuleSet:
    rules: list[LoadedRule] = field(default_factory=list)
    correlation_docs: list[tuple[str, dict]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    files: int = 0

    @property
    def infos(self) -> list[RuleInfo]:
        return [r.info for r in self.rules]


# One cache entry per file: what the file yielded, in order.
Entry = tuple[str, object]  # ("rule", LoadedRule) | ("refused", Refusal) | ("correlation", dict)


def cache_dir() -> Path:
    base = os.environ.get("SVCHUNT_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "svchunt"


def rule_files(paths: Iterable[str]) -> tuple[list[Path], list[Refusal]]:
    files: list[Path] = []
    problems: list[Refusal] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.suffix.lower() in RULE_SUFFIXES and f.is_file())
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Refusal(str(path), None, None, "rule path does not exist"))
    return files, problems


class _Cache:
    def __init__(self, salt: str, enabled: bool = True):
        self.enabled = enabled
        self.path = cache_dir() / f"rules-{compiler_digest()}-{salt}.pickle"
        self.entries: dict[str, list[Entry]] = {}
        self.dirty = False
        if enabled and self.path.exists():
            try:
                with self.path.open("rb") as fh:
                    self.entries = pickle.load(fh)
            except Exception:  # a damaged cache is only a slower start, never a wrong answer
                self.entries = {}

    def save(self, used: set[str]) -> None:
        if not (self.enabled and self.dirty):
            return
        keep = {k: v for k, v in self.entries.items() if k in used or len(self.entries) < 20000}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rules-")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(keep, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # read-only home: run uncached


def load_rules(
    paths: Iterable[str],
    allowlists: Allowlists | None = None,
    use_cache: bool = True,
) -> RuleSet:
    allowlists = allowlists if allowlists is not None else load_allowlists()
    files, missing = rule_files(paths)
    cache = _Cache(allowlists.digest(), enabled=use_cache)
    ruleset = RuleSet(refused=list(missing), files=len(files))
    seen_ids: dict[str, str] = {}
    used: set[str] = set()
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            ruleset.refused.append(Refusal(str(path), None, None, f"cannot read rule file: {exc.strerror}"))
            continue
        key = hashlib.sha256(data).hexdigest()
        used.add(key)
        entries = cache.entries.get(key)
        if entries is None:
            entries = _compile_file(str(path), data, allowlists)
            cache.entries[key] = entries
            cache.dirty = True
        for kind, item in entries:
            _add(ruleset, kind, item, str(path), seen_ids)
    cache.save(used)
    return ruleset


def _add(ruleset: RuleSet, kind: str, item: object, path: str, seen_ids: dict[str, str]) -> None:
    if kind == "rule":
        loaded: LoadedRule = item  # type: ignore[assignment]
        info = loaded.info
        if info.path != path:  # same content in another file: report the file the user gave
            info = RuleInfo(**{**_asdict(info), "path": path})
            loaded = LoadedRule(loaded.compiled, info)
        if info.rule_id in seen_ids:
            ruleset.refused.append(
                Refusal(path, info.rule_id, info.title, f"duplicate rule id (already loaded from {seen_ids[info.rule_id]})")
            )
            return
        seen_ids[info.rule_id] = path
        ruleset.rules.append(loaded)
    elif kind == "refused":
        r: Refusal = item  # type: ignore[assignment]
        ruleset.refused.append(Refusal(path, r.rule_id, r.title, r.reason))
    else:
        ruleset.correlation_docs.append((path, item))  # type: ignore[arg-type]


def _asdict(info: RuleInfo) -> dict:
    return {name: getattr(info, name) for name in info.__slots__}  # type: ignore[attr-defined]


def _compile_file(path: str, data: bytes, allowlists: Allowlists) -> list[Entry]:
    # Imported here: a warm cache never pays for importing pySigma.
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    from svchunt.rules.sigma_to_ir import Unsupported, compile_rule, rule_info

    try:
        text = data.decode("utf-8-sig")
        docs = [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
    except UnicodeDecodeError as exc:
        return [("refused", Refusal(path, None, None, f"not UTF-8 text (byte {exc.start}): not a rule file"))]
    except yaml.YAMLError as exc:
        return [("refused", Refusal(path, None, None, yaml_error(exc)))]
    if not all(isinstance(d, dict) for d in docs):
        return [("refused", Refusal(path, None, None, "a rule document must be a YAML mapping"))]
    entries: list[Entry] = []
    if any("action" in d for d in docs):
        try:
            rules = [r for r in SigmaCollection.from_yaml(text, collect_errors=True).rules if isinstance(r, SigmaRule)]
        except SigmaError as exc:
            return [("refused", Refusal(path, None, None, f"Sigma error: {exc}"))]
    else:
        rules = []
        for doc in docs:
            if "correlation" in doc:
                entries.append(("correlation", doc))
                continue
            if "detection" not in doc:
                entries.append(("refused", Refusal(path, _str(doc.get("id")), _str(doc.get("title")), "no detection section")))
                continue
            try:
                rules.append(SigmaRule.from_dict(doc, collect_errors=True))
            except (SigmaError, ValueError, TypeError, AttributeError) as exc:
                entries.append(("refused", Refusal(path, _str(doc.get("id")), _str(doc.get("title")), f"Sigma error: {exc}")))
    for rule in rules:
        info = rule_info(rule, path)
        try:
            compiled = compile_rule(rule, allowlists.get)
        except Unsupported as exc:
            entries.append(("refused", Refusal(path, info.rule_id, info.title, str(exc))))
            continue
        except (SigmaError, ValueError, TypeError, AttributeError) as exc:
            entries.append(("refused", Refusal(path, info.rule_id, info.title, f"Sigma error: {exc}")))
            continue
        compiled.rule_id = info.rule_id
        entries.append(("rule", LoadedRule(compiled, info)))
    return entries


def yaml_error(exc: yaml.YAMLError) -> str:
    """`not valid YAML at line L, column C: problem` (1-based, as editors count), for the rule's file."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else str(problem)
    if mark is None:
        return f"not valid YAML: {detail}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {detail}"


def _str(value: object) -> str | None:
    return None if value is None else str(value)
