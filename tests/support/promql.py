"""What the dashboard and the alert rules ask Prometheus for, read with a real PromQL parser.

Why a parser (promql-parser, the Rust one behind GreptimeDB) and not a regular expression: a
metric name must be told from a function, a label, a keyword or a duration, and a query that does
not parse must fail the test, not be skipped. Used by `tests/observability` (names against the
operator's registry) and `tests/e2e/test_prometheus.py` (queries against a real server).

Grafana's variables are replaced before parsing (`substitute`): `$source` by a regex of sources,
`$__rate_interval` and `$__range` by durations, `${datasource}` never appears in an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "videopipe" / "dashboards" / "videopipe.json"
RULES = REPO / "charts" / "videopipe" / "rules" / "videopipe.rules.yaml"
# Labels Prometheus adds to every scraped series (target labels), so any query may use them.
TARGET_LABELS = frozenset({"job", "instance"})
_VARIABLE = re.compile(r"\$(\{[A-Za-z_]+\}|[A-Za-z_]+)")


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'Backlog now' A" or "alert VideopipeOperatorDown"
    expr: str


@dataclass
class Uses:
    """The metric names a query selects, with the labels it matches on each, and the labels of
    every `by (...)` with the names selected inside it."""

    selectors: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    groupings: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.selectors}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_rules(path: Path = RULES) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(board: dict[str, Any]) -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def rule_queries(rules: dict[str, Any]) -> list[Query]:
    return [
        Query(f"alert {r['alert']}" if "alert" in r else f"record {r['record']}", r["expr"])
        for group in rules["groups"]
        for r in group["rules"]
    ]


def substitute(
    expr: str, source: str = ".*", rate_interval: str = "5m", time_range: str = "1h"
) -> str:
    """The query as Grafana sends it, for these values of its variables."""
    values = {"source": source, "__rate_interval": rate_interval, "__range": time_range}

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip("{}")
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def uses(expr: str) -> Uses:
    """Parse `expr` (raises ValueError when it is not PromQL) and collect what it names."""
    out = Uses()
    _walk(pp.parse(expr), out)
    return out


def _walk(node: Any, out: Uses) -> set[str]:
    """Collect into `out`; return the metric names selected below `node`."""
    if isinstance(node, pp.VectorSelector):
        matchers = list(node.matchers.matchers)
        for group in node.matchers.or_matchers or []:
            matchers.extend(group)
        labels = frozenset(m.name for m in matchers if m.name != "__name__")
        names = {node.name} if node.name else set()
        names |= {m.value for m in matchers if m.name == "__name__" and m.op == pp.MatchOp.Equal}
        for name in names:
            out.selectors.append((name, labels))
        return names
    if isinstance(node, pp.MatrixSelector):
        return _walk(node.vector_selector, out)
    if isinstance(node, pp.AggregateExpr):
        names = _walk(node.expr, out)
        if node.param is not None:
            names |= _walk(node.param, out)
        modifier = node.modifier
        if modifier is not None and modifier.type == pp.AggModifierType.By:
            out.groupings.append((frozenset(modifier.labels), frozenset(names)))
        return names
    if isinstance(node, pp.BinaryExpr):
        names = _walk(node.lhs, out) | _walk(node.rhs, out)
        matching = node.modifier.matching if node.modifier is not None else None
        if matching is not None and matching.type == pp.LabelModifierType.Include:
            out.groupings.append((frozenset(matching.labels), frozenset(names)))
        return names
    if isinstance(node, pp.Call):
        names: set[str] = set()
        for arg in node.args:
            names |= _walk(arg, out)
        return names
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return _walk(node.expr, out)
    return set()  # number and string literals


__all__ = [
    "DASHBOARD",
    "RULES",
    "TARGET_LABELS",
    "Query",
    "Uses",
    "dashboard_queries",
    "load_dashboard",
    "load_rules",
    "panels",
    "rule_queries",
    "substitute",
    "uses",
]
