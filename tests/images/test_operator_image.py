"""The operator image, started with the chart's own pod restrictions, serves its probes.

Real: the image `make images` built, run by podman with the securityContext, resources and /tmp
volume of the Deployment that Helm renders from `charts/videopipe` (mapped as for the worker,
`tests/images/podman.py`). Its kubeconfig names a loopback port that nothing listens on, so the
test shows what a kubelet would see from an operator whose API server is not there yet: alive
(`/healthz` 200), not ready (`/readyz` 503, saying why). On a real node it is `tests/e2e`'s part.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tests.images.podman import (
    OPERATOR_IMAGE,
    container_name,
    podman,
    resource_flags,
    security_flags,
    volume_flags,
)
from tests.support.ports import free_port

pytestmark = [pytest.mark.images, pytest.mark.usefixtures("images")]

CHART = Path(__file__).resolve().parents[2] / "charts" / "videopipe"


def deployment_pod_spec() -> dict:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render({}, name="vp", namespace="media", is_install=True)
    texts = [text for name, text in rendered.items() if name.endswith(".yaml")]
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    (deployment,) = [d for d in docs if d.get("kind") == "Deployment"]
    return deployment["spec"]["template"]["spec"]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def poll(url: str, want: int, deadline: float = 120) -> tuple[int, str]:
    """Ask until `url` answers `want` or the deadline passes; the last answer."""
    end, last = time.monotonic() + deadline, (0, "no answer")
    while time.monotonic() < end:
        try:
            last = get(url)
        except OSError as e:  # not listening yet
            last = (0, str(e))
        if last[0] == want:
            break
        time.sleep(0.5)
    return last


def test_operator_image_serves_health_under_the_chart_restrictions(tmp_path: Path) -> None:
    pod = deployment_pod_spec()
    (container,) = pod["containers"]
    kubeconfig = tmp_path / "kubeconfig"
    nowhere = f"http://127.0.0.1:{free_port()}"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": nowhere}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    kubeconfig.chmod(0o644)
    health, metrics = free_port(), free_port()
    flags = security_flags(pod["securityContext"], container["securityContext"])
    flags += resource_flags(container.get("resources", {}))
    flags += volume_flags(pod, container, {})
    args = [*container["args"], "--kubeconfig", "/etc/videopipe/kubeconfig"]
    args += ["--health-port", str(health), "--metrics-port", str(metrics), "--bind", "127.0.0.1"]
    with container_name() as name:
        podman(
            "run", "--detach", "--name", name, "--pull=never", "--network=host", *flags,
            "--volume", f"{kubeconfig}:/etc/videopipe/kubeconfig:ro",
            OPERATOR_IMAGE, *args,
        )  # fmt: skip
        alive = poll(f"http://127.0.0.1:{health}/healthz", 200)
        logs = podman("logs", name).stderr
        assert alive[0] == 200, (alive, logs[-3000:])
        ready = get(f"http://127.0.0.1:{health}/readyz")
        assert ready[0] == 503 and "cannot list VideoSources" in ready[1], ready
        status, text = get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200 and "# TYPE" in text
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert state["Running"], state
