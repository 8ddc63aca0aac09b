"""The Grafana dashboard's shape: templated on data source and source, every panel on the chosen
data source, every per-source query filtered by the chosen sources, a layout Grafana accepts.
What the queries name is checked in `test_queries.py`; that they return data, in
`tests/e2e/test_prometheus.py`.
"""

from __future__ import annotations

from typing import Any

from tests.support import promql

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_templated_on_data_source_and_source(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "source"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    assert source["type"] == "query" and source["datasource"] == DATASOURCE
    assert source["includeAll"] and source["multi"] and source["allValue"] == ".*"
    assert promql.uses(source["definition"].replace("label_values(", "").split(",")[0]).names == {
        "videopipe_source_ready"
    }


def test_every_panel_queries_the_chosen_data_source(dashboard: dict[str, Any]) -> None:
    for panel in promql.panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
        assert panel.get("description"), f"{panel['title']}: say what it shows"


def test_per_source_queries_filter_by_the_chosen_sources(dashboard: dict[str, Any]) -> None:
    exported_with_source = {
        "videopipe_backlog_objects",
        "videopipe_videojobs_in_flight",
        "videopipe_videojobs_finished_total",
    }
    for query in promql.dashboard_queries(dashboard):
        found = promql.uses(promql.substitute(query.expr, source="SOURCE"))
        for name, labels in found.selectors:
            if name.startswith("videopipe_") and "source" in labels:
                assert 'source=~"$source"' in query.expr, query
            if name in exported_with_source:
                assert "source" in labels, f"{query.where}: {name} unfiltered"


def test_the_panels_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in promql.panels(dashboard)}
    for wanted in (
        "Videos finished per hour",  # throughput
        "Success ratio",
        "Backlog in pending/",
        "In flight by accelerator",
        "Queue wait (upload → Job start)",
        "Processing duration",
        "Real-time factor",
        "Audio processed",
        "S3 errors",
        "Operator restarts",
    ):
        assert wanted in titles, wanted


def test_layout_ids_and_grid(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "videopipe" and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in promql.panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in promql.panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
    for panel in promql.panels(dashboard):
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
