"""`Cluster`: the real control plane plus the kubelet stand-in, with helpers tests keep needing.

Why a separate module: the pytest fixture (`fixtures.py`) and `make cluster` (`__main__.py`) start
exactly the same thing, and tests want a few verbs on top of the raw API client (a namespace with
a PodSecurity level, a kubeconfig that authenticates as a ServiceAccount, `kubectl`, polling with a
deadline, the logs of pods for a failure report). Nothing here fakes Kubernetes behaviour.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from kubernetes import client

from tests.cluster.controlplane import REPO, ControlPlane, port_open, write_kubeconfig
from tests.cluster.kubelet import DEFAULT_NODES, Kubelet, NodeSpec

T = TypeVar("T")

# A container securityContext that the `restricted` Pod Security level admits.
RESTRICTED_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout} s waiting for {text}")
        time.sleep(interval)


def unless_gone(call: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """`call(*args, **kwargs)` on one object; None if the object is already gone (404).

    For clean-ups: between listing objects and acting on each, a controller, the garbage
    collector or the operator may remove one (a pruned VideoJob takes its Job with it). Gone is
    what a clean-up wanted, so NotFound is success; any other error is raised.
    """
    try:
        return call(*args, **kwargs)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def kubectl_path() -> str:
    venv = REPO / ".venv" / "bin" / "kubectl"
    if venv.exists():
        return str(venv)
    found = shutil.which("kubectl")
    if not found:
        raise FileNotFoundError("kubectl not found: `make install` provides it in .venv/bin")
    return found


class Cluster:
    """A running test cluster: `kubeconfig`, `api` (admin ApiClient), `server`, and helpers."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        logdir: Path | None = None,
        nodes: Iterable[NodeSpec] = DEFAULT_NODES,
        bin_dir: Path | None = None,
    ) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="videopipe-cluster-"))
        self.control_plane = ControlPlane(bin_dir=bin_dir, workdir=self.dir / "control-plane")
        self._nodes = list(nodes)
        self._logdir = logdir
        self.kubelet: Kubelet | None = None
        self.api: client.ApiClient | None = None
        self.startup_seconds = 0.0

    # -- lifecycle --

    def start(self) -> Cluster:
        t0 = time.monotonic()
        self.control_plane.start()
        try:
            self.kubelet = Kubelet(
                self.kubeconfig,
                self.dir / "kubelet",
                self._nodes,
                logdir=self._logdir or self.dir / "pod-logs",
                serving_cert=self.control_plane.kubelet_serving_cert,
            )
            self.kubelet.start()
            self.api = self.control_plane.api_client()
            self._wait_nodes_ready()
        except BaseException:
            self.stop(check=False)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self, check: bool = True) -> None:
        """Stop the kubelet (killing every pod process), then the control plane, and check."""
        leftover_pods: list[int] = []
        kubelet_ports: list[int] = []
        if self.kubelet is not None:
            kubelet_ports = self.kubelet.ports
            self.kubelet.stop()
            leftover_pods = self.kubelet.running_pids()
            self.kubelet = None
        if self.api is not None:
            self.api.close()
            self.api = None
        self.control_plane.stop(check=check)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if check:
            assert not leftover_pods, f"pod processes left running: {leftover_pods}"
            still_open = [p for p in kubelet_ports if port_open(p)]
            assert not still_open, f"kubelet ports still listening: {still_open}"

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(check=exc_type is None)

    # -- what tests use --

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (client certificate in system:masters)."""
        return self.control_plane.kubeconfig

    @property
    def server(self) -> str:
        return self.control_plane.server

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    def pod_log(self, namespace: str, name: str) -> str:
        """What the pod's process printed (stdout and stderr together); '' if it never ran."""
        assert self.kubelet is not None
        return self.kubelet.pod_log(namespace, name)

    def pod_logs_since(self, since: float) -> dict[str, str]:
        """`{'<namespace>/<pod>': log}` for every pod log written to after `since` (epoch s)."""
        assert self.kubelet is not None
        out = {}
        for path in sorted(self.kubelet.logdir.glob("*.log")):
            if path.stat().st_mtime >= since:
                ns, _, pod = path.stem.partition("_")
                out[f"{ns}/{pod}"] = path.read_text(errors="replace")
        return out

    def create_namespace(
        self,
        name: str | None = None,
        pod_security: str | None = "restricted",
        labels: dict[str, str] | None = None,
    ) -> str:
        """A new namespace (a random `test-…` name by default) enforcing a Pod Security level."""
        name = name or f"test-{uuid.uuid4().hex[:8]}"
        all_labels = dict(labels or {})
        if pod_security:
            all_labels["pod-security.kubernetes.io/enforce"] = pod_security
            all_labels["pod-security.kubernetes.io/enforce-version"] = "latest"
        self.core.create_namespace(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": all_labels},
            }
        )
        return name

    def delete_namespace(self, name: str, wait: bool = False, timeout: float = 60) -> None:
        """Delete a namespace (the namespace controller removes what is in it)."""
        unless_gone(self.core.delete_namespace, name)
        if wait:
            wait_for(lambda: not self._exists(name), timeout, message=f"namespace {name} gone")

    def drop_finalizers(self, group: str, version: str, plural: str, namespace: str) -> None:
        """Remove every finalizer from the namespace's custom objects of one kind.

        Teardown, once no operator runs: otherwise the namespace never finishes deleting. Objects
        that vanish meanwhile, and a kind whose CRD is not installed, are nothing to do.
        """
        custom = client.CustomObjectsApi(self.api)
        listing = unless_gone(
            custom.list_namespaced_custom_object, group, version, namespace, plural
        )
        for item in (listing or {}).get("items", []):
            patch = {"metadata": {"finalizers": None}}
            name = item["metadata"]["name"]
            unless_gone(
                custom.patch_namespaced_custom_object,
                group,
                version,
                namespace,
                plural,
                name,
                patch,
            )

    def delete_jobs(self, namespace: str) -> None:
        """Delete the namespace's Jobs and their pods now (a Job already gone is fine)."""
        for job in self.batch.list_namespaced_job(namespace).items:
            unless_gone(
                self.batch.delete_namespaced_job,
                job.metadata.name,
                namespace,
                propagation_policy="Background",
            )

    def _exists(self, namespace: str) -> bool:
        try:
            self.core.read_namespace(namespace)
        except client.ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def token_kubeconfig(
        self,
        serviceaccount: str,
        namespace: str,
        path: Path | None = None,
        expiration_seconds: int = 3600,
    ) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount (TokenRequest token): for RBAC."""
        req = self.core.create_namespaced_service_account_token(
            serviceaccount,
            namespace,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        path = path or self.dir / "tokens" / f"{namespace}_{serviceaccount}.kubeconfig"
        return write_kubeconfig(
            path,
            self.server,
            self.control_plane.ca_file.read_bytes(),
            user=f"system:serviceaccount:{namespace}:{serviceaccount}",
            token=req.status.token,
            namespace=namespace,
        )

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the `kubectl` from .venv against this cluster as admin; output captured as text."""
        result = subprocess.run(
            [kubectl_path(), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def apply(self, *paths: Path | str) -> None:
        """`kubectl apply --server-side` of files or folders; waits for CRDs to be Established."""
        for p in paths:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(p))
        crds = self.kubectl("get", "crd", "-o", "name").stdout.split()
        if crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 30.0,
        interval: float = 0.2,
        message: str | Callable[[], str] = "condition",
    ) -> T:
        return wait_for(predicate, timeout, interval, message)

    # -- internals --

    def _wait_nodes_ready(self) -> None:
        names = {n.name for n in self._nodes}

        def ready() -> bool:
            nodes = self.core.list_node().items
            ok = set()
            for node in nodes:
                conds = {c.type: c.status for c in node.status.conditions or []}
                taints = [t.key for t in node.spec.taints or []]
                if conds.get("Ready") == "True" and not any(
                    t.startswith("node.kubernetes.io/") for t in taints
                ):
                    ok.add(node.metadata.name)
            return names <= ok

        wait_for(ready, 30, 0.1, "nodes Ready and untainted")
