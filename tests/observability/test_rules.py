"""The alert rules: valid for Prometheus (`promtool check rules`), each alert firing on what it
is about and quiet on the look-alikes (`promtool test rules` on `alerts.test.yaml`), and each
carrying the text an on-call person needs (summary, description, runbook, severity).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import promql

TESTS = Path(__file__).with_name("alerts.test.yaml")


def alerts(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_rules_file(promtool: str, rules: dict[str, Any]) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(promql.RULES)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts(rules))} rules found" in done.stdout


def test_every_alert_explains_itself(rules: dict[str, Any]) -> None:
    for name, rule in alerts(rules).items():
        assert name.startswith("Videopipe"), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook"}, name
        assert all(len(text) > 20 for text in notes.values()), name
        assert "{{" not in notes["runbook"], f"{name}: a runbook is text, not a template"


def test_promtool_unit_tests_fire_and_stay_quiet(
    promtool: str, rules: dict[str, Any], tmp_path: Path
) -> None:
    spec = yaml.safe_load(TESTS.read_text())
    spec["rule_files"] = [str(promql.RULES)]
    fixed = {
        name: {k: v for k, v in rule["annotations"].items() if "{{" not in v}
        for name, rule in alerts(rules).items()
    }
    fired: set[str] = set()
    quiet: set[str] = set()
    for group in spec["tests"]:
        for case in group["alert_rule_test"]:
            name = case["alertname"]
            (fired if case.get("exp_alerts") else quiet).add(name)
            for alert in case.get("exp_alerts") or []:
                alert["exp_annotations"] = {**fixed[name], **(alert.get("exp_annotations") or {})}
    assert fired == quiet == set(alerts(rules)), "each alert needs a firing and a quiet case"
    generated = tmp_path / "alerts.test.yaml"
    generated.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
    done = subprocess.run(
        [promtool, "test", "rules", str(generated)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
