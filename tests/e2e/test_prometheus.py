"""A real Prometheus scrapes the real operator through a short run, and the dashboard and alerts
work on what it collected.

The run is made to touch every panel honestly, with two short videos: a ResourceQuota that
allows no Jobs at first (start failures: Kubernetes API and reconcile errors, videos waiting
while nothing runs), then lifted; a good talk (succeeds: durations, real-time factor, audio)
and a file that is not a video (fails: NotMedia); a second VideoSource whose S3 endpoint is
closed (S3 errors, a source not ready). Prometheus (Debian's, on 127.0.0.1, scraping and
evaluating the chart's rules every second) then answers every panel's query with Grafana's
variables filled in, every rule evaluates without error, and the alerts that the run provoked
are pending. `promtool check metrics` lints the same scrape. Throughout, /healthz is asked
twice a second with a watch-silence allowance of 10 s: a real run must never look silent.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Operator, Videopipe
from tests.e2e.test_events import TOKEN, minio_event, push
from tests.support import promql
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.receiver import SECRET, Receiver

pytestmark = pytest.mark.cluster

QUOTA = "no-jobs-yet"


def create_quota(vp: Videopipe, jobs: int) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA},
        "spec": {"hard": {"count/jobs.batch": str(jobs)}},
    }
    vp.cluster.core.create_namespaced_resource_quota(vp.namespace, body)


class HealthSampler:
    """Asks /healthz twice a second in a thread; keeps every answer that was not 200."""

    def __init__(self, op: Operator) -> None:
        self.op = op
        self.failures: list[tuple[int, str]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            code, body = self.op.get("/healthz")
            self.samples += 1
            if code != 200:
                self.failures.append((code, body))

    def start(self) -> HealthSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


def test_prometheus_scrapes_the_operator_and_every_panel_has_data(
    videopipe: Videopipe, talk_videos: dict[str, Path], corrupt_video: Path, tmp_path: Path
) -> None:
    vp = videopipe
    started = time.monotonic()
    create_quota(vp, 0)
    # Webhooks (the first try answered 500) and pushed events on one source, an SQS queue that
    # never answers on the other: the rows of bucket events and webhooks get data too.
    receiver = Receiver([(500, {}, b"")])
    vp.create_secret("hooks", secret=SECRET)
    vp.create_secret("events", token=TOKEN)
    vp.create_source(
        "talks",
        maxConcurrentJobs=2,
        events={"http": {"tokenSecretRef": {"name": "events", "key": "token"}}},
        notifications=[{"url": receiver.url, "secretRef": {"name": "hooks", "key": "secret"}}],
    )
    dead = f"http://127.0.0.1:{free_port()}"
    vp.create_source(
        "offline",
        endpoint=dead,
        events={"sqs": {"queueUrl": f"{dead}/000000000000/uploads", "endpoint": dead}},
    )
    op = vp.start_operator(VIDEOPIPE_WATCH_SILENCE_SECONDS="10")
    health = HealthSampler(op).start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus", [f"127.0.0.1:{op.metrics_port}"], [promql.RULES]
    )
    try:
        talks, offline = f"{vp.namespace}/talks", f"{vp.namespace}/offline"
        vp.wait(lambda: prometheus.value("up") == 1, 60, "first scrape")
        vp.upload("hello.mp4", talk_videos["hello"])
        vp.upload("corrupt.mp4", corrupt_video)
        assert push(op, vp, minio_event(vp.bucket, "pending/hello.mp4"), "talks")[0] == 200
        assert push(op, vp, minio_event(vp.bucket, "pending/hello.mp4"), "talks", "no")[0] == 401

        # The quota refuses the Jobs: counted as errors, and the videos wait with nothing running.
        vp.wait(
            lambda: (
                prometheus.value(
                    'increase(videopipe_kubernetes_api_errors_total{operation="create_job"}[1m])'
                )
                > 0
            ),
            60,
            "create_job errors seen by Prometheus",
        )
        vp.wait(lambda: alert_state(prometheus, "VideopipeJobsNotStarting", talks), 30)
        vp.cluster.core.delete_namespaced_resource_quota(QUOTA, vp.namespace)

        vp.wait(
            lambda: vp.keys("completed") == ["hello.mp4"] and "corrupt.mp4" in vp.keys("failed"),
            240,
            "one video completed, one failed",
        )
        finished = f'sum(videopipe_videojobs_finished_total{{source="{talks}"}})'
        vp.wait(lambda: prometheus.value(finished) == 2, 60, "both outcomes scraped")
        delivered = f'sum(videopipe_notifications_total{{source="{talks}",outcome="delivered"}})'
        vp.wait(lambda: prometheus.value(delivered) == 2, 60, "both webhooks delivered")
        run_seconds = time.monotonic() - started
        health.stop()
        assert health.samples > 10 and health.failures == [], health.failures

        # Every panel, as Grafana would ask with both sources selected.
        sources = f"{talks}|{offline}"  # Kubernetes names: nothing to escape in a regex
        queries = promql.dashboard_queries(promql.load_dashboard())

        def empty_panels() -> list[str]:
            empty = []
            for query in queries:
                expr = promql.substitute(query.expr, source=sources)
                if not finite(prometheus.query(expr)):
                    empty.append(f"{query.where}: {expr}")
            return empty

        # rate() needs two samples: a counter first scraped a moment ago has none yet.
        deadline = time.monotonic() + 30
        while (empty := empty_panels()) and time.monotonic() < deadline:
            time.sleep(1)
        assert empty == [], "panels without data:\n" + "\n".join(empty)

        # Every rule evaluates cleanly; the alerts this run provoked are pending.
        for group in prometheus.api("rules")["groups"]:
            for rule in group["rules"]:
                assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
        assert alert_state(prometheus, "VideopipeS3Errors", offline)
        assert alert_state(prometheus, "VideopipeSourceNotReady", offline)
        assert not alert_state(prometheus, "VideopipeOperatorDown", None)
        assert not alert_state(prometheus, "VideopipeSourceNotPolling", talks)

        # The scrape itself: promtool's linter, and every name a query uses is in it.
        code, text = op.get("/metrics", port=op.metrics_port)
        assert code == 200
        lint = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
        samples = {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
        used = set()
        for query in [*queries, *promql.rule_queries(promql.load_rules())]:
            used |= promql.uses(promql.substitute(query.expr)).names
        assert used <= samples, used - samples
        print(
            f"\nrun {run_seconds:.0f} s; {len(queries)} panel queries with data; "
            f"{len(used)} metric names scraped"
        )
    finally:
        health.stop()
        prometheus.close()
        receiver.close()


def alert_state(prometheus: PrometheusServer, name: str, source: str | None) -> str | None:
    """'pending' or 'firing' if `name` is active (for `source`, when given), else None."""
    for alert in prometheus.api("alerts")["alerts"]:
        labels = alert["labels"]
        if labels["alertname"] == name and (source is None or labels.get("source") == source):
            return alert["state"]
    return None
