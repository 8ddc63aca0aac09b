"""The operator's exposition passes Prometheus's own linter (`promtool check metrics`), with the
source series created at zero as a new source's loop does, and the README's metric naming holds.
`tests/e2e/test_prometheus.py` runs the same lint on a real scrape of the running operator.
"""

from __future__ import annotations

import subprocess

from prometheus_client import REGISTRY, generate_latest


def test_promtool_lints_the_exposition(promtool: str) -> None:
    from videopipe_operator import metrics

    metrics.init_source("lint/source")
    metrics.S3_ERRORS.labels(source="lint/source", operation="ListObjectsV2", reason="X").inc()
    text = generate_latest(REGISTRY)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_names_follow_the_contract() -> None:
    from videopipe_operator import metrics

    allowed_labels = {
        "source",
        "accelerator",
        "outcome",
        "reason",
        "operation",
        "resource",
        "kind",
        "via",
    }
    for metric in metrics.ALL_METRICS:
        name = metric._name
        assert name.startswith("videopipe_"), name
        assert set(metric._labelnames) <= allowed_labels, name
        if metric._type == "histogram":
            assert name.endswith("_seconds") or name == "videopipe_realtime_factor", name
