"""Precision on the public attack samples: every (file, claimed item) pair is one the brief supports for
that file, and files the brief ties to a tool get that tool's items and no other tool's
(scripts/evaluate_content_brief.yml; the same computation writes docs/evaluation.md)."""

from __future__ import annotations

import importlib.util
import sys

from conftest import REPO, shared

from svchunt.engine.hunt import HuntOptions, run_hunt


def _script():
    spec = importlib.util.spec_from_file_location("evaluate_content", REPO / "scripts" / "evaluate_content.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_content"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_claims_on_the_attack_samples_are_supported_by_the_brief():
    ev = _script()
    root = shared("evtx-attack-samples")
    brief = ev.load_yaml(ev.DEFAULT_BRIEF)
    result = run_hunt(HuntOptions(paths=[str(root)], use_cache=False))
    prec = ev.precision(result.alerts, root, brief)
    assert prec.cited > 40  # the pack claims things, and most of them the brief cites for the very file
    assert prec.unsupported == []
    assert prec.tool_missing == []
    assert prec.tool_wrong == []
    tool_files = {f for f, e in brief.items() if e.get("tools")}
    assert len(tool_files) == 6 and all(prec.claimed.get(f) for f in tool_files)


def test_precision_flags_a_misattribution():
    """The check is not vacuous: a PsExec claim on the Metasploit psexec_psh file is reported."""
    from svchunt.model import Alert, Evidence, RuleInfo

    ev = _script()
    root = shared("evtx-attack-samples")
    source = str(root / "Lateral Movement" / "LM_sysmon_psexec_smb_meterpreter.evtx")
    alert = Alert(RuleInfo("r", "t", claims=("PT-CR-752", "PT-CR-1981")), None, None,
                  [Evidence(source, 9806, 13, "x")], {})  # fmt: skip
    prec = ev.precision([alert], root, ev.load_yaml(ev.DEFAULT_BRIEF))
    file = "Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx"
    assert prec.unsupported == [(file, "PT-CR-752")]
    assert prec.tool_wrong == [(file, "PT-CR-752")]
