"""Every metric a dashboard panel or an alert names is one the operator exports, with the labels
it is matched or grouped on (docs/architecture.md, "Metrics"). A typo in a name or a label would
otherwise give an empty panel or an alert that can never fire, silently.
"""

from __future__ import annotations

import pytest

from tests.support import promql

QUERIES = [
    *promql.dashboard_queries(promql.load_dashboard()),
    *promql.rule_queries(promql.load_rules()),
]


def problems(query: promql.Query, exported: dict[str, frozenset[str]]) -> list[str]:
    """What is wrong with one query: unknown metrics, unknown labels (empty when fine)."""
    try:
        found = promql.uses(promql.substitute(query.expr))
    except ValueError as e:
        return [f"does not parse: {e}"]
    out = []
    for name, labels in found.selectors:
        if name not in exported:
            out.append(f"{name} is not exported by the operator")
        elif unknown := labels - exported[name] - promql.TARGET_LABELS:
            out.append(f"{name} has no label(s) {sorted(unknown)}")
    for labels, names in found.groupings:
        known = set(promql.TARGET_LABELS)
        for name in names:
            known |= exported.get(name, frozenset())
        if unknown := labels - known:
            out.append(f"grouping by {sorted(unknown)}, which none of {sorted(names)} has")
    if not found.names:
        out.append("selects no metric at all")
    return out


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_query_names_only_what_the_operator_exports(
    query: promql.Query, exported: dict[str, frozenset[str]]
) -> None:
    assert problems(query, exported) == [], query.expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(videopipe_backlog_object)", "videopipe_backlog_object is not exported"),
        ("rate(videopipe_s3_errors[5m])", "videopipe_s3_errors is not exported"),  # no _total
        ("videopipe_queue_wait_seconds", "videopipe_queue_wait_seconds is not exported"),
        ('videopipe_backlog_objects{sourse="a"}', "has no label(s) ['sourse']"),
        ("sum by (acelerator) (videopipe_videojobs_in_flight)", "grouping by ['acelerator']"),
        ("sum(rate(videopipe_backlog_objects[5m])", "does not parse"),
        ("vector(1)", "selects no metric"),
    ],
)
def test_the_check_catches_typos(
    expr: str, expected: str, exported: dict[str, frozenset[str]]
) -> None:
    found = problems(promql.Query("typo", expr), exported)
    assert any(expected in p for p in found), found


def test_histogram_and_counter_suffixes_are_known(exported: dict[str, frozenset[str]]) -> None:
    assert {"videopipe_queue_wait_seconds_bucket", "videopipe_queue_wait_seconds_count"} <= set(
        exported
    )
    assert "le" in exported["videopipe_queue_wait_seconds_bucket"]
    assert "videopipe_videojobs_finished_total" in exported
    assert exported["videopipe_build_info"] == {"version"}
    assert "process_start_time_seconds" in exported


def family(sample: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def test_the_dashboard_and_alerts_use_what_is_exported(exported: dict[str, frozenset[str]]) -> None:
    """The reverse direction: a metric nobody charts or alerts on is dead weight or a gap."""
    used = {family(n) for q in QUERIES for n in promql.uses(promql.substitute(q.expr)).names}
    ours = {family(n) for n in exported if n.startswith("videopipe_")} - {
        family(n) for n in exported if n.endswith("_created")
    }
    # Exported for ad-hoc queries and debugging; charted nowhere on purpose.
    assert ours - used == {"videopipe_videojobs_retried_total", "videopipe_invalid_keys"}
