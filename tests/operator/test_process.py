"""The process around the logic: settings from env, liveness, wake-ups, re-arm patches, CLI."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import kopf
import pytest
from videopipe_operator import kopf_settings
from videopipe_operator.__main__ import parse_args
from videopipe_operator.config import Config
from videopipe_operator.coordination import Coordination
from videopipe_operator.discovery import replacing
from videopipe_operator.health import Health

from tests.support.ports import free_port


def test_config_from_env() -> None:
    config = Config.from_env(
        {
            "VIDEOPIPE_WORKER_IMAGE": "example.com/worker:1",
            "VIDEOPIPE_MAX_WORKERS": "8",
            "VIDEOPIPE_DEADLINE_CPU_FACTOR": "2.5",
            "VIDEOPIPE_NAMESPACES": "a, b,,c",
            "VIDEOPIPE_WORKER_SERVICE_ACCOUNT": "vp-worker",
            "UNRELATED": "x",
        }
    )
    assert config.worker_image == "example.com/worker:1"
    assert config.worker_service_account == "vp-worker"
    assert config.max_workers == 8 and config.deadline_cpu_factor == 2.5
    assert config.namespace_list == ["a", "b", "c"]
    assert Config.from_env({}) == Config()


@pytest.mark.parametrize("namespaced", [True, False])
def test_kopf_scans_the_cluster_only_when_serving_all_of_it(namespaced: bool) -> None:
    """Serving given namespaces, kopf lists no Namespaces or CRDs: no ClusterRole needed."""
    settings = kopf.OperatorSettings()
    kopf_settings.apply(settings, Config(), namespaced=namespaced)
    assert settings.scanning.disabled is namespaced


def test_config_rejects_malformed_numbers() -> None:
    with pytest.raises(ValueError, match="VIDEOPIPE_MAX_WORKERS"):
        Config.from_env({"VIDEOPIPE_MAX_WORKERS": "many"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_liveness_fails_when_a_loop_stops_turning() -> None:
    clock = Clock()
    health = Health(liveness_polls=3, grace_seconds=60, clock=clock)
    health.beat("ns/a", interval=15)
    health.beat("ns/b", interval=60)
    clock.now += 61
    assert health.problems() == ["ns/a: no pass for 61 s (allowed 60 s)"]
    clock.now += 100  # b is allowed 3 × 60 s
    assert [p.split(":")[0] for p in health.problems()] == ["ns/a"]
    health.forget("ns/a")
    assert health.problems() == []
    health.add_check("watch", lambda: "silent for 300 s")
    assert health.problems() == ["watch: silent for 300 s"]


def get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_health_endpoints() -> None:
    clock = Clock()
    health = Health(liveness_polls=1, grace_seconds=1, clock=clock)
    port = health.serve(free_port(), "127.0.0.1")
    try:
        assert get(port, "/healthz") == 200
        assert get(port, "/readyz") == 503
        health.mark_ready()
        assert get(port, "/readyz") == 200
        health.beat("ns/a", 1)
        clock.now += 5
        assert get(port, "/healthz") == 503
        assert get(port, "/nope") == 404
    finally:
        health.close()
    assert Health().serve(0) == 0


def test_wake_ends_a_wait_early_and_stop_ends_it_at_once() -> None:
    coordination = Coordination()
    key = ("ns", "a")
    threading.Timer(0.05, coordination.wake, [key]).start()
    assert coordination.wait(key, 30, stopped=lambda: False, step=0.01) is True
    assert coordination.wait(key, 30, stopped=lambda: True) is False
    assert coordination.wait(key, 0.01, stopped=lambda: False, step=0.01) is False


def test_invalid_keys_are_reported_once() -> None:
    coordination = Coordination()
    key = ("ns", "a")
    assert coordination.newly_reported(key, ["x", "y"]) == ["x", "y"]
    assert coordination.newly_reported(key, ["x", "y", "z"]) == ["z"]
    assert coordination.newly_reported(key, ["y"]) == []
    assert coordination.newly_reported(key, ["x"]) == ["x"]  # gone and back: news again


def test_rearm_patch_replaces_settings_but_keeps_identity() -> None:
    old = {
        "source": "s",
        "key": "pending/a",
        "worker": {"model": "small", "language": "de", "env": [{"name": "A", "value": "1"}]},
        "gpuType": "t4",
        "attempt": 1,
    }
    new = {"worker": {"language": "en"}, "attempt": 2}
    patch = replacing(old, new, keep=frozenset({"source", "key"}))
    assert patch == {
        "worker": {"model": None, "env": None, "language": "en"},
        "gpuType": None,
        "attempt": 2,
    }


@pytest.mark.parametrize(
    ("argv", "namespaces", "everything"),
    [
        (["-n", "a", "--namespace", "b"], ["a", "b"], False),
        (["--all-namespaces"], [], True),
        ([], [], False),
    ],
)
def test_cli(argv: list[str], namespaces: list[str], everything: bool) -> None:
    args = parse_args([*argv, "--standalone"])
    assert args.namespace == namespaces and args.all_namespaces is everything
    assert args.health_port == 8080 and args.metrics_port == 9090 and args.standalone


def test_cli_namespace_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        parse_args(["-n", "a", "-A"])
