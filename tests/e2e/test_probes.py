"""The probes catch a stuck operator: each failure is made for real, then undone.

- A silent watch: the operator reaches the API server through a relay that stops forwarding
  long-lived streams (`netfaults.StreamFreezer`), as a load balancer or NAT that keeps the
  connection and drops its data would. The source loop keeps working over plain requests, so
  only the watch audit can tell: /healthz must fail naming the silent resource, and recover
  once the streams are cut and kopf re-connects.
- A stuck source loop: the VideoSource is pointed at an S3 endpoint that accepts connections and
  never answers (`netfaults.Blackhole`); the pass hangs in a read, /healthz must fail naming the
  source, and recover when the endpoint goes away and the pass fails fast.
- The API server frozen (SIGSTOP, the real process of the test control plane): an operator
  started meanwhile is not ready until the API answers and kopf has listed the sources; a
  running one fails liveness while its loop hangs on the API, and recovers.

The thresholds are shortened through the operator's documented settings
(VIDEOPIPE_LIVENESS_POLLS, _GRACE_SECONDS, VIDEOPIPE_WATCH_SILENCE_SECONDS); nothing in the
operator is patched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.cluster.harness import Cluster, wait_for
from tests.e2e.conftest import Operator, Videopipe
from tests.support.netfaults import Blackhole, StreamFreezer

pytestmark = pytest.mark.cluster

FAST_LIVENESS = {"VIDEOPIPE_LIVENESS_POLLS": "2", "VIDEOPIPE_LIVENESS_GRACE_SECONDS": "3"}


def healthz(op: Operator) -> tuple[int, str]:
    return op.get("/healthz")


def wait_health(op: Operator, code: int, timeout: float = 30) -> str:
    """Until /healthz answers `code`; returns its body. Asks nothing of the API server, which
    may be frozen meanwhile."""
    seen: list[tuple[int, str]] = []

    def answered() -> str | None:
        seen.append(healthz(op))
        return (seen[-1][1] or "ok") if seen[-1][0] == code else None

    return wait_for(answered, timeout, 0.25, lambda: f"/healthz {code}; last: {seen[-1:]}")


def relayed_kubeconfig(cluster: Cluster, port: int, path: Path) -> Path:
    """The cluster's admin kubeconfig, with the server address of the relay instead."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def frozen_apiserver(cluster: Cluster) -> Iterator[None]:
    """SIGSTOP the kube-apiserver process; SIGCONT it whatever happens."""
    pid = cluster.control_plane.pids["kube-apiserver"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_silent_watch_fails_liveness_until_the_watch_is_back(videopipe: Videopipe) -> None:
    api_port = urlparse(videopipe.cluster.server).port
    assert api_port is not None
    relay = StreamFreezer(api_port)
    try:
        kubeconfig = relayed_kubeconfig(
            videopipe.cluster, relay.port, videopipe.workdir / "relayed.kubeconfig"
        )
        videopipe.create_source()
        op = videopipe.start_operator(
            KUBECONFIG=str(kubeconfig), VIDEOPIPE_WATCH_SILENCE_SECONDS="3"
        )
        videopipe.wait_polls(3)
        assert healthz(op) == (200, "ok\n")

        started = time.monotonic()
        relay.freeze()
        body = wait_health(op, 503)
        detected = time.monotonic() - started
        assert "watch: silent" in body and f"videosources {videopipe.namespace}/talks" in body
        assert "no pass" not in body, "the loop itself kept working"
        videopipe.wait_polls(2)  # plain requests still work: the loop polls on, unheard
        assert relay.frozen >= 1

        started = time.monotonic()
        assert relay.thaw() >= 1
        wait_health(op, 200)
        recovered = time.monotonic() - started
        log = op.text()
        assert "liveness failing (/healthz 503): watch: silent" in log
        assert "liveness recovered" in log
        print(f"\nsilent watch detected in {detected:.1f} s, recovered {recovered:.1f} s after")
    finally:
        relay.close()


def test_a_hung_source_loop_fails_liveness_until_it_turns_again(videopipe: Videopipe) -> None:
    videopipe.create_source()
    op = videopipe.start_operator(**FAST_LIVENESS)
    videopipe.wait_polls(2)
    assert healthz(op)[0] == 200

    hole = Blackhole()
    try:
        started = time.monotonic()
        videopipe.patch_source("talks", {"endpoint": hole.url})
        body = wait_health(op, 503)
        detected = time.monotonic() - started
        assert f"{videopipe.namespace}/talks: no pass for" in body
        assert "watch" not in body
    finally:
        hole.close()  # the hung read is reset, the retries are refused: the pass ends
    started = time.monotonic()
    wait_health(op, 200)
    recovered = time.monotonic() - started

    def unreachable() -> bool:
        conditions = (videopipe.source().get("status") or {}).get("conditions") or []
        ready = [c for c in conditions if c["type"] == "Ready"]
        return bool(ready) and ready[0]["reason"] == "EndpointUnreachable"

    videopipe.wait(unreachable, 30, "Ready=False EndpointUnreachable")
    assert healthz(op)[0] == 200, "a broken bucket is a condition, not a liveness failure"
    print(f"\nhung loop detected in {detected:.1f} s, recovered {recovered:.1f} s after")


def test_ready_only_once_the_api_answers_and_live_while_it_does(videopipe: Videopipe) -> None:
    videopipe.create_source()
    with frozen_apiserver(videopipe.cluster):
        op = videopipe.start_operator(wait_ready=False, **FAST_LIVENESS)
        wait_for(lambda: op.get("/readyz")[0] == 503, 30, 0.25, "health port up")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the API is gone for good measure: never ready
            assert op.get("/readyz")[0] == 503
            assert healthz(op)[0] == 200, "nothing to restart: no loop runs yet"
            time.sleep(0.2)
    started = time.monotonic()
    videopipe.wait(lambda: op.get("/readyz") == (200, "ok\n"), 60, "ready after SIGCONT")
    print(f"\nready {time.monotonic() - started:.1f} s after the API server resumed")
    videopipe.wait_polls(2)
    assert healthz(op)[0] == 200

    with frozen_apiserver(videopipe.cluster):
        body = wait_health(op, 503, timeout=20)
        assert f"{videopipe.namespace}/talks: no pass for" in body
    wait_health(op, 200)
    assert op.get("/readyz")[0] == 200, "readiness stays on: a restart is liveness's call"
