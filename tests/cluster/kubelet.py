"""A kubelet stand-in: two Nodes whose Pods run as local processes from the repo's `.venv`.

Why: the control plane (`controlplane.py`) is the real one, but a real kubelet needs a container
runtime, which these machines do not have. This stand-in does the kubelet's part of the contract
as seen through the API, and nothing else: it registers `cpu-node` and `gpu-node` (the GPU node
with `nvidia.com/gpu: 1`, a GKE accelerator label and a `nvidia.com/gpu` NoSchedule taint), keeps
their Ready condition and `kube-node-lease` Leases fresh, and runs every Pod that the real
scheduler binds to them:

- the first container's `command` + `args` (or, without `command`, the image's entrypoint from
  `IMAGES`, keyed by the image name without registry or tag) as a local process in a new process
  group, with `.venv/bin` first on PATH. `$(VAR)` references are expanded as the kubelet does;
- env from literals, `secretKeyRef`, `configMapKeyRef`, `envFrom`, the downward API (`fieldRef`,
  `resourceFieldRef`). A missing required Secret/ConfigMap or key keeps the container Waiting with
  reason `CreateContainerConfigError`, retried until it appears or the pod is deleted;
- paths inside the container are mapped to per-pod folders: `terminationMessagePath`, and every
  volume mount (emptyDir, secret, configMap, downwardAPI, projected, hostPath; a missing Secret or
  ConfigMap behind a volume is a `FailedMount` event, the pod stays ContainerCreating and the
  mount is retried). An env value or
  an argument equal to or under such a path is rewritten to the host path, so
  `VIDEOPIPE_TERMINATION_LOG=/dev/termination-log` or `TMPDIR=/tmp` (an emptyDir) just work;
- a pod with a service-account token volume (what the ServiceAccount admission plugin adds) gets a
  TokenRequest token bound to the pod, written to that volume, and `KUBECONFIG` pointing at a
  kubeconfig that uses it: the process talks to the apiserver as its ServiceAccount, so RBAC
  applies to it as in a cluster;
- status through the pods/status subresource: Pending → Running → Succeeded/Failed, with
  containerStatuses (`state.terminated.exitCode`, `reason`, `message` read from the termination
  file or, with `FallbackToLogsOnError`, the log tail, `startedAt`, `finishedAt`), conditions,
  `podIP`/`hostIP` 127.0.0.1. restartPolicy OnFailure/Always restart in place with the
  kubelet's CrashLoopBackOff delays;
- deletion: SIGTERM to the process group, SIGKILL after the grace period, terminal status, then
  delete with gracePeriodSeconds=0 as the kubelet does (Job tracking finalizers then resolve);
- Events (Pulled, Started, Killing, Failed, BackOff, FailedMount) for `kubectl describe`, and
  `/containerLogs` over HTTPS on each node's kubelet port, so `kubectl logs` works through the
  apiserver (which verifies the stand-in's certificate, issued by the cluster CA).

Stdout and stderr of a pod go to `<logdir>/<namespace>_<pod>.log`; `pod_log()` reads it.
Not done: init and sidecar containers (only the first container runs; others show Waiting),
probes (a running container is ready), resource limits, image pulls, isolation, `kubectl exec`,
file paths hard-coded in a program (only env values, args and workingDir are mapped).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

log = logging.getLogger("videopipe.kubelet")

REPO = Path(__file__).resolve().parent.parent.parent
VENV_BIN = REPO / ".venv" / "bin"
KUBELET_VERSION = "v1.35.4"  # what nodeInfo reports; matches the control plane that we build

Json = dict[str, Any]


# --- nodes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Json, ...] = ()
    extra_capacity: dict[str, str] = field(default_factory=dict)


CPU_NODE = NodeSpec("cpu-node")
GPU_NODE = NodeSpec(
    "gpu-node",
    labels={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
    taints=({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},),
    extra_capacity={"nvidia.com/gpu": "1"},
)
DEFAULT_NODES = (CPU_NODE, GPU_NODE)
NODE_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "200Gi"}


# --- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What an image runs: ENTRYPOINT and CMD (a container's `command` and `args` replace them)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


# Keyed by the end of the repository name: `ghcr.io/acme/videopipe-worker:1.2` matches
# `videopipe-worker`. Add a line here when a test uses another image without a `command`.
IMAGES: dict[str, Image] = {
    "videopipe-worker": Image(entrypoint=("videopipe",)),
    "videopipe-operator": Image(entrypoint=("videopipe",)),
    "videopipe": Image(entrypoint=("videopipe",)),
    "python": Image(cmd=("python3",)),
    "busybox": Image(cmd=("sh",)),
    "alpine": Image(cmd=("/bin/sh",)),
}


def image_name(image: str) -> str:
    """The repository part of an image reference: no registry, tag or digest."""
    ref = image.split("@", 1)[0]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1].split(":", 1)[0]
    return "/".join([*parts[:-1], last])


def image_for(image: str) -> Image | None:
    name = image_name(image)
    for key in sorted(IMAGES, key=len, reverse=True):
        if name == key or name.endswith("/" + key) or name.endswith(key):
            return IMAGES[key]
    return None


# --- small helpers ------------------------------------------------------------------------


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names replaced, unknown kept, `$$` escapes `$`."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR_REF.sub(sub, value)


class ConfigError(Exception):
    """The container cannot be configured yet (kubelet reason CreateContainerConfigError)."""


class MountError(Exception):
    """A volume cannot be set up yet (the kubelet would keep the pod in ContainerCreating)."""


# --- one pod ------------------------------------------------------------------------------


class PodRun(threading.Thread):
    """Runs one Pod from binding to removal and reports its status. One thread per pod."""

    def __init__(self, kubelet: Kubelet, pod: Json) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.dir = kubelet.pods_dir / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.log_path = kubelet.log_path(self.namespace, self.name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.finished = threading.Event()
        self.status_retries = 0  # status writes that failed and were tried again
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._delete_grace: float | None = None  # set once deletion is requested
        self._gone = False  # the pod object no longer exists
        self.start_time = now_rfc3339()
        self.restart_count = 0
        self.last_state: Json = {}
        self.container_id = ""
        self.kubeconfig_path: Path | None = None
        self._group_done = False  # the process group was reaped: never signal its id again

    # -- called from the watch thread --

    def update(self, pod: Json) -> None:
        with self._lock:
            self.pod = pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds")
            self.request_delete(30.0 if grace is None else float(grace))

    def request_delete(self, grace: float) -> None:
        with self._lock:
            if self._delete_grace is None or grace < self._delete_grace:
                self._delete_grace = grace
        self._wake.set()

    def gone(self) -> None:
        """The pod was removed from the API (force deletion): kill at once."""
        self._gone = True
        self.request_delete(0)

    @property
    def deleting(self) -> bool:
        return self._delete_grace is not None

    # -- the lifecycle --

    @property
    def spec(self) -> Json:
        return self.pod["spec"]

    @property
    def container(self) -> Json:
        return self.spec["containers"][0]

    def run(self) -> None:
        try:
            self._lifecycle()
        except Exception:
            log.error("pod %s/%s: %s", self.namespace, self.name, traceback.format_exc())
            with contextlib.suppress(Exception):
                self._report(
                    "Failed",
                    {
                        "terminated": {
                            "exitCode": 128,
                            "reason": "StandInError",
                            "message": traceback.format_exc()[-1024:],
                            "startedAt": self.start_time,
                            "finishedAt": now_rfc3339(),
                        }
                    },
                )
        finally:
            self._kill(signal.SIGKILL)
            if self.deleting and not self._gone and not self.kubelet.stopping.is_set():
                with contextlib.suppress(Exception):
                    self._delete_now()
            self.finished.set()

    def _lifecycle(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._report("Pending", {"waiting": {"reason": "ContainerCreating"}})
        policy = self.spec.get("restartPolicy", "Always")
        backoff = self.kubelet.crashloop_base
        last_problem = ""
        while True:
            if self.deleting:
                self._finish_deletion(None)
                return
            try:
                argv, env, cwd, term_file = self._prepare()
            except ConfigError as e:
                if str(e) != last_problem:  # report a problem once, retry quietly
                    last_problem = str(e)
                    self._event("Failed", f"Error: {e}", "Warning")
                    self._report(
                        self._phase_while_waiting(),
                        {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}},
                    )
                self._sleep(self.kubelet.config_retry)
                continue
            except MountError as e:
                if str(e) != last_problem:
                    last_problem = str(e)
                    self._event("FailedMount", f"MountVolume.SetUp failed: {e}", "Warning")
                self._sleep(self.kubelet.config_retry)
                continue
            last_problem = ""

            started = now_rfc3339()
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            image = self.container.get("image", "")
            self._event("Pulled", f'Container image "{image}" already present on machine')
            try:
                self._spawn(argv, env, cwd)
            except OSError as e:
                self._event("Failed", f"Error: failed to start container: {e}", "Warning")
                terminated = {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": f"failed to start container process: {e}",
                    "startedAt": started,
                    "finishedAt": now_rfc3339(),
                }
                exit_code = 128
            else:
                self._event("Started", f"Started container {self.container['name']}")
                self._report("Running", {"running": {"startedAt": started}}, ready=True)
                exit_code = self._wait()
                terminated = self._terminated(exit_code, started, term_file, log_offset)

            if self.deleting:
                self._finish_deletion(terminated)
                return
            restart = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
            if not restart:
                phase = "Succeeded" if exit_code == 0 else "Failed"
                self._report(phase, {"terminated": terminated})
                # The thread ends here; a later deletion is handled by Kubelet._dispatch.
                return
            self.restart_count += 1
            self.last_state = {"terminated": terminated}
            self._event("BackOff", "Back-off restarting failed container", "Warning")
            self._report(
                "Running",
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff:g}s restarting failed container",
                    }
                },
            )
            self._sleep(backoff)
            backoff = min(backoff * 2, self.kubelet.crashloop_max)

    def _phase_while_waiting(self) -> str:
        return "Running" if self.restart_count else "Pending"

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when deletion is requested."""
        self._wake.wait(seconds)
        self._wake.clear()

    # -- preparing a container --

    def _prepare(self) -> tuple[list[str], dict[str, str], Path, Path]:
        c = self.container
        mounts = self._mounts()
        term_container = c.get("terminationMessagePath") or "/dev/termination-log"
        term_file = self.dir / "termination-log"
        term_file.write_bytes(b"")
        mapping = [(term_container, term_file), *mounts]
        env = self._env(mapping)
        image = image_for(c.get("image", ""))
        if c.get("command"):
            argv = [expand(a, env) for a in [*c["command"], *c.get("args", [])]]
        elif image is not None:
            args = c.get("args")
            tail = [expand(a, env) for a in args] if args is not None else list(image.cmd)
            argv = [*image.entrypoint, *tail]
        else:
            argv = []
        if not argv:
            raise ConfigError(
                f"no command, and image {c.get('image')!r} is not in the stand-in's IMAGES table"
            )
        argv = [rewrite_path(a, mapping) for a in argv]
        cwd = self._workdir(c.get("workingDir"), mapping)
        return argv, env, cwd, term_file

    def _workdir(self, working_dir: str | None, mapping: list[tuple[str, Path]]) -> Path:
        if working_dir:
            mapped = rewrite_path(working_dir, mapping)
            if mapped != working_dir or Path(working_dir).is_dir():
                Path(mapped).mkdir(parents=True, exist_ok=True)
                return Path(mapped)
            path = self.dir / "rootfs" / working_dir.lstrip("/")
        else:
            path = self.dir / "rootfs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _env(self, mapping: list[tuple[str, Path]]) -> dict[str, str]:
        c = self.container
        env: dict[str, str] = {}
        for source in c.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if ref := source.get("secretRef"):
                data = self.kubelet.read_secret(self.namespace, ref["name"], ref.get("optional"))
            elif ref := source.get("configMapRef"):
                data = self.kubelet.read_configmap(self.namespace, ref["name"], ref.get("optional"))
            else:
                continue
            for k, v in (data or {}).items():
                if re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", prefix + k):
                    env[prefix + k] = v
        for var in c.get("env") or []:
            name = var["name"]
            if "value" in var or "valueFrom" not in var:
                env[name] = expand(var.get("value", ""), env)
                continue
            src = var["valueFrom"]
            value: str | None
            if ref := src.get("secretKeyRef"):
                value = self._key_ref("Secret", ref)
            elif ref := src.get("configMapKeyRef"):
                value = self._key_ref("ConfigMap", ref)
            elif ref := src.get("fieldRef"):
                value = self._field(ref["fieldPath"])
            elif ref := src.get("resourceFieldRef"):
                value = self._resource_field(ref)
            else:
                raise ConfigError(f"unsupported valueFrom for env {name}: {src}")
            if value is not None:
                env[name] = value
        # What a container gets besides its env: PATH (the repo's venv first), HOME, HOSTNAME.
        # These are host paths already: only the pod's own values are container paths to map
        # (an emptyDir at /tmp must not capture the stand-in's KUBECONFIG, which lives under
        # the host's /tmp).
        base = {
            "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.dir / "home"),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
        }
        (self.dir / "home").mkdir(exist_ok=True)
        if self.kubeconfig_path is not None:
            base["KUBECONFIG"] = str(self.kubeconfig_path)
        return {**base, **{k: rewrite_path(v, mapping) for k, v in env.items()}}

    def _key_ref(self, kind: str, ref: Json) -> str | None:
        optional = bool(ref.get("optional"))
        read = self.kubelet.read_secret if kind == "Secret" else self.kubelet.read_configmap
        data = read(self.namespace, ref["name"], optional)
        if data is None:
            return None
        if ref["key"] not in data:
            if optional:
                return None
            raise ConfigError(
                f"couldn't find key {ref['key']} in {kind} {self.namespace}/{ref['name']}"
            )
        return data[ref["key"]]

    def _field(self, path: str) -> str:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        simple = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": "127.0.0.1",
            "status.podIPs": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }
        if path in simple:
            return simple[path]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
        if m:
            return (meta.get(m.group(1)) or {}).get(m.group(2), "")
        if path in ("metadata.labels", "metadata.annotations"):
            items = meta.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        raise ConfigError(f"unsupported fieldPath {path!r}")

    def _resource_field(self, ref: Json) -> str:
        resource = ref["resource"]
        c = self.container
        if ref.get("containerName"):
            c = next(x for x in self.spec["containers"] if x["name"] == ref["containerName"])
        kind, _, name = resource.partition(".")
        res = c.get("resources") or {}
        value = (res.get(kind) or {}).get(name)
        if value is None and kind == "requests":
            value = (res.get("limits") or {}).get(name)
        if value is None:
            value = NODE_CAPACITY.get(name, "0")
        divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)  # "0" means 1
        return str(math.ceil(parse_quantity(value) / divisor))

    # -- volumes --

    def _mounts(self) -> list[tuple[str, Path]]:
        """(container path, host path) for each volumeMount, volumes materialised on disk."""
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        vols_dir = self.dir / "volumes"
        made: dict[str, Path] = {}
        for vol in volumes.values():
            made[vol["name"]] = self._volume(vol, vols_dir / vol["name"])
        out = []
        for m in self.container.get("volumeMounts") or []:
            host = made[m["name"]]
            if sub := m.get("subPath"):
                host = host / sub
                if not host.exists():
                    host.mkdir(parents=True, exist_ok=True)
            out.append((m["mountPath"], host))
        return sorted(out, key=lambda pair: len(pair[0]), reverse=True)

    def _volume(self, vol: Json, path: Path) -> Path:
        """Materialise one volume; a missing Secret or ConfigMap is a mount failure.

        As with the kubelet, that leaves the pod ContainerCreating with a FailedMount event and is
        retried, rather than failing the container's configuration: a new namespace's
        `kube-root-ca.crt` is published a moment after the namespace, and a pod may come first.
        """
        try:
            return self._materialise(vol, path)
        except ConfigError as e:
            raise MountError(str(e)) from e

    def _materialise(self, vol: Json, path: Path) -> Path:
        if hp := vol.get("hostPath"):
            return Path(hp["path"])
        path.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol:
            return path
        if src := vol.get("secret"):
            data = self.kubelet.read_secret(self.namespace, src["secretName"], src.get("optional"))
            self._write_items(path, data, src.get("items"), "Secret", src["secretName"])
        elif src := vol.get("configMap"):
            data = self.kubelet.read_configmap(self.namespace, src["name"], src.get("optional"))
            self._write_items(path, data, src.get("items"), "ConfigMap", src["name"])
        elif src := vol.get("downwardAPI"):
            self._write_downward(path, src.get("items") or [])
        elif src := vol.get("projected"):
            for s in src.get("sources") or []:
                if sat := s.get("serviceAccountToken"):
                    self._write_token(path, sat)
                elif cm := s.get("configMap"):
                    data = self.kubelet.read_configmap(
                        self.namespace, cm["name"], cm.get("optional")
                    )
                    self._write_items(path, data, cm.get("items"), "ConfigMap", cm["name"])
                elif sec := s.get("secret"):
                    data = self.kubelet.read_secret(
                        self.namespace, sec["name"], sec.get("optional")
                    )
                    self._write_items(path, data, sec.get("items"), "Secret", sec["name"])
                elif dapi := s.get("downwardAPI"):
                    self._write_downward(path, dapi.get("items") or [])
        return path

    def _write_items(
        self,
        path: Path,
        data: dict[str, str] | None,
        items: list[Json] | None,
        kind: str,
        name: str,
    ) -> None:
        if data is None:
            return
        pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
        for key, rel in pairs:
            if key not in data:
                raise MountError(f"couldn't find key {key} in {kind} {self.namespace}/{name}")
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[key])

    def _write_downward(self, path: Path, items: list[Json]) -> None:
        for item in items:
            if ref := item.get("fieldRef"):
                value = self._field(ref["fieldPath"])
            elif ref := item.get("resourceFieldRef"):
                value = self._resource_field(ref)
            else:
                continue
            target = path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value)

    def _write_token(self, path: Path, source: Json) -> None:
        sa = self.spec.get("serviceAccountName") or "default"
        spec: Json = {
            "expirationSeconds": int(source.get("expirationSeconds") or 3607),
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": self.name,
                "uid": self.uid,
            },
        }
        if aud := source.get("audience"):
            spec["audiences"] = [aud]
        try:
            resp = self.kubelet.core.create_namespaced_service_account_token(
                sa,
                self.namespace,
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except ApiException as e:
            raise MountError(f"token for serviceaccount {self.namespace}/{sa}: {e.reason}") from e
        token = resp.status.token
        (path / source.get("path", "token")).write_text(token)
        (path / "namespace").write_text(self.namespace)
        (path / "ca.crt").write_bytes(self.kubelet.ca_pem)
        self.kubeconfig_path = self.dir / "kubeconfig"
        self.kubelet.write_token_kubeconfig(self.kubeconfig_path, token, self.namespace)

    # -- the process --

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._group_done = False
        self.container_id = f"standin://{self.uid}-{self.restart_count}"
        log.info("pod %s/%s: started pid %d: %s", self.namespace, self.name, self.proc.pid, argv)

    def _wait(self) -> int:
        """Wait for the process; on deletion SIGTERM then SIGKILL after the grace period."""
        proc = self.proc
        assert proc is not None
        term_sent_at: float | None = None
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if self.deleting:
                grace = self._delete_grace or 0.0
                if term_sent_at is None:
                    term_sent_at = time.monotonic()
                    self._event("Killing", f"Stopping container {self.container['name']}")
                    self._kill(signal.SIGTERM if grace > 0 else signal.SIGKILL)
                elif time.monotonic() - term_sent_at >= grace:
                    self._kill(signal.SIGKILL)
        self._kill(signal.SIGKILL)  # what the process left in its group goes with it
        self._group_done = True
        return 128 - rc if rc < 0 else rc

    def _kill(self, sig: int) -> None:
        if self.proc is not None and not self._group_done:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def _terminated(self, exit_code: int, started: str, term_file: Path, log_offset: int) -> Json:
        message = (
            term_file.read_bytes()[:4096].decode(errors="replace") if term_file.exists() else ""
        )
        policy = self.container.get("terminationMessagePolicy", "File")
        if not message and exit_code != 0 and policy == "FallbackToLogsOnError":
            with contextlib.suppress(OSError), self.log_path.open("rb") as f:
                f.seek(log_offset)
                lines = f.read().decode(errors="replace").splitlines()
                message = "\n".join(lines[-80:])[-2048:]
        terminated: Json = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now_rfc3339(),
            "containerID": self.container_id,
        }
        if message:
            terminated["message"] = message
        return terminated

    # -- deletion --

    def _finish_deletion(self, terminated: Json | None) -> None:
        if terminated is not None and not self._gone:
            # Since Kubernetes 1.27 the kubelet moves a deleted pod to a terminal phase first.
            phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"
            with contextlib.suppress(ApiException):
                self._report(phase, {"terminated": terminated})
        elif not self._gone:
            with contextlib.suppress(ApiException):
                self._report(
                    "Failed",
                    {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "ContainerStatusUnknown",
                            "message": (
                                "The container could not be located when the pod was deleted"
                            ),
                            "startedAt": self.start_time,
                            "finishedAt": now_rfc3339(),
                        }
                    },
                )
        if not self._gone:
            self._delete_now()

    def _delete_now(self) -> None:
        """Remove the pod object with grace 0 (only this pod: the uid is a precondition)."""
        try:
            self.kubelet.core.delete_namespaced_pod(
                self.name,
                self.namespace,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)
                ),
            )
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    # -- events (what `kubectl describe pod` shows) --

    def _event(self, reason: str, message: str, kind: str = "Normal") -> None:
        meta = self.pod["metadata"]
        now = now_micro()
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": event_name(self.name), "namespace": self.namespace},
            "eventTime": now,
            "reportingController": "kubelet",
            "reportingInstance": f"kubelet-{self.spec.get('nodeName', '')}",
            "action": reason,
            "reason": reason,
            "note": message[:1024],
            "type": kind,
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.name,
                "namespace": self.namespace,
                "uid": meta["uid"],
                "fieldPath": f"spec.containers{{{self.container['name']}}}",
            },
        }
        try:
            self.kubelet.events.create_namespaced_event(self.namespace, body)
        except Exception as e:  # an event is best effort, as in the kubelet
            log.info("event %s for %s/%s: %s", reason, self.namespace, self.name, e)

    # -- status --

    def _report(self, phase: str, state: Json, ready: bool = False) -> None:
        c = self.container
        now = now_rfc3339()
        terminal = phase in ("Succeeded", "Failed")
        status: Json = {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": f"standin-image://{image_name(c.get('image', ''))}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        others = [
            {
                "name": x["name"],
                "image": x.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "NotRunByStandIn"}},
            }
            for x in self.spec["containers"][1:]
        ]
        pod_ready = ready and not others

        def cond(kind: str, ok: bool, reason: str | None = None) -> Json:
            out: Json = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastTransitionTime": now,
            }
            if reason and not ok:
                out["reason"] = reason
            return out

        not_ready = "PodCompleted" if terminal else "ContainersNotReady"
        body: Json = {
            "status": {
                "phase": phase,
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}],
                "startTime": self.start_time,
                "qosClass": self.pod.get("status", {}).get("qosClass", "BestEffort"),
                "conditions": [
                    cond("PodReadyToStartContainers", not terminal),
                    cond("Initialized", True),
                    cond("ContainersReady", pod_ready, not_ready),
                    cond("Ready", pod_ready, not_ready),
                    cond("PodScheduled", True),
                ],
                "containerStatuses": [status, *others],
            }
        }
        self._patch_status(body)

    def _patch_status(self, body: Json) -> None:
        # Keep the lastTransitionTime of conditions that did not change.
        old = {c["type"]: c for c in (self.pod.get("status") or {}).get("conditions") or []}
        for c in body["status"]["conditions"]:
            prev = old.get(c["type"])
            if prev and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
                c["lastTransitionTime"] = prev["lastTransitionTime"]
        # As a real kubelet does, keep trying through an API server outage (errors, refused or
        # hung connections) until the status is written, the pod is gone, or the node stops: a
        # status given up on would leave a finished pod Running for ever.
        delay = 0.2
        while True:
            try:
                result = self.kubelet.core.patch_namespaced_pod_status(
                    self.name, self.namespace, body, _preload_content=False, _request_timeout=30
                )
                with self._lock:
                    self.pod = json.loads(result.data)
                return
            except ApiException as e:
                if e.status == 404:
                    self._gone = True
                    self.request_delete(0)
                    return
                log.info(
                    "pod %s/%s status: %s %s: retrying",
                    self.namespace,
                    self.name,
                    e.status,
                    e.reason,
                )
            except (urllib3.exceptions.HTTPError, OSError) as e:
                log.info("pod %s/%s status: %r: retrying", self.namespace, self.name, e)
            self.status_retries += 1
            if self.kubelet.stopping.wait(delay):
                return
            delay = min(delay * 2, 2.0)


def event_name(regarding: str) -> str:
    """`<object>.<nanoseconds in hex>`, as the kubelet names its Events.

    Not a `generateName` of `<object>.`: the API server validates generateName itself as a DNS
    subdomain, which may not end in a dot (422).
    """
    suffix = f".{time.time_ns():x}"
    return regarding[: 253 - len(suffix)].rstrip(".-") + suffix


def rewrite_path(value: str, mapping: Iterable[tuple[str, Path]]) -> str:
    """Map a container path (or a value under one) to its host path; other values unchanged."""
    for container_path, host in mapping:
        cp = container_path.rstrip("/") or "/"
        if value == cp:
            return str(host)
        if cp != "/" and value.startswith(cp + "/"):
            return str(host) + value[len(cp) :]
    return value


# --- the kubelet's HTTPS endpoint (pod logs) -----------------------------------------------


class _LogHandler(BaseHTTPRequestHandler):
    """`GET /containerLogs/<ns>/<pod>/<container>`, which the apiserver calls for `kubectl logs`.

    Honours `tailLines`, `limitBytes` and `follow`. The caller is not authenticated: only the
    apiserver can reach this port, on loopback, and it verifies our certificate.
    """

    server: _LogServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("log server: " + format, *args)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path in ("/healthz", "/readyz"):
            self._send(200, b"ok")
            return
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._send(404, b"not found")
            return
        _, namespace, pod, _container = parts
        kubelet = self.server.kubelet
        path = kubelet.log_path(namespace, pod)
        if not path.exists():
            self._send(404, f"no logs for pod {namespace}/{pod}".encode())
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        data = path.read_bytes()
        if "tailLines" in query:
            n = int(query["tailLines"])
            data = b"".join(data.splitlines(keepends=True)[-n:]) if n > 0 else b""
        if "limitBytes" in query:
            data = data[: int(query["limitBytes"])]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(data)
        if query.get("follow") != "true":
            return
        run = kubelet.run_for(namespace, pod)
        offset = path.stat().st_size
        try:
            while run is not None and not kubelet.stopping.is_set():
                done = run.finished.is_set() or (
                    run.proc is not None and run.proc.poll() is not None
                )
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    offset += len(chunk)
                elif done:
                    return
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kubelet: Kubelet, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _LogHandler)
        self.kubelet = kubelet
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


# --- the kubelet --------------------------------------------------------------------------


class Kubelet:
    """The stand-in for all its nodes. `start()`, then `stop()`; `pod_log()` for tests."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        nodes: Iterable[NodeSpec] = DEFAULT_NODES,
        *,
        logdir: Path | None = None,
        heartbeat_seconds: float = 10.0,
        crashloop_base: float = 10.0,
        crashloop_max: float = 300.0,
        config_retry: float = 2.0,
        serving_cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.dir = Path(workdir)
        self.logdir = Path(logdir) if logdir else self.dir / "pod-logs"
        self.pods_dir = self.dir / "pods"
        self.nodes = list(nodes)
        self.node_names = {n.name for n in self.nodes}
        self.heartbeat_seconds = heartbeat_seconds
        self.crashloop_base = crashloop_base
        self.crashloop_max = crashloop_max
        self.config_retry = config_retry
        self.stopping = threading.Event()
        self._runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 64
        self.server: str = cfg.host
        self.ca_pem: bytes = Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert else b""
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self.events = client.EventsV1Api(self.api)
        self._log_handler: logging.Handler | None = None
        self._watch: watch.Watch | None = None
        self._serving_cert = serving_cert
        self._servers: dict[str, _LogServer] = {}

    # -- public --

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.dir / "kubelet.log")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s")
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._log_handler = handler
        for node in self.nodes:
            if self._serving_cert is not None:
                server = _LogServer(self, *self._serving_cert)
                self._servers[node.name] = server
                t = threading.Thread(
                    target=server.serve_forever, name=f"kubelet-https-{node.name}", daemon=True
                )
                t.start()
                self._threads.append(t)
            self._register(node)
        for target, name in [(self._heartbeat_loop, "heartbeat"), (self._watch_loop, "pod-watch")]:
            t = threading.Thread(target=target, name=f"kubelet-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Kill every pod process (its whole group) and stop the threads."""
        self.stopping.set()
        if self._watch is not None:
            self._watch.stop()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run._kill(signal.SIGKILL)
            run.request_delete(0)
        for run in runs:
            if run.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.proc.wait(timeout=timeout)
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=2)
        if self._log_handler is not None:
            log.removeHandler(self._log_handler)
            self._log_handler.close()
        self.api.close()

    def __enter__(self) -> Kubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_path(self, namespace: str, name: str) -> Path:
        return self.logdir / f"{namespace}_{name}.log"

    def pod_log(self, namespace: str, name: str) -> str:
        """Everything the pod's process printed (stdout and stderr), '' if it never ran."""
        try:
            return self.log_path(namespace, name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def ports(self) -> list[int]:
        """The HTTPS ports this stand-in listens on (one per node)."""
        return [s.port for s in self._servers.values()]

    def run_for(self, namespace: str, name: str) -> PodRun | None:
        """The newest PodRun of a pod by namespace and name, if this stand-in ran it."""
        with self._lock:
            runs = [r for r in self._runs.values() if (r.namespace, r.name) == (namespace, name)]
        return runs[-1] if runs else None

    def running_pids(self) -> list[int]:
        """Process-group ids of pods whose process has not been reaped."""
        with self._lock:
            runs = list(self._runs.values())
        return [r.proc.pid for r in runs if r.proc is not None and r.proc.poll() is None]

    # -- API reads shared by pods --

    def read_secret(
        self, namespace: str, name: str, optional: bool | None
    ) -> dict[str, str] | None:
        obj = self._read("secrets", namespace, name, "secret", optional)
        if obj is None:
            return None
        data = {
            k: base64.b64decode(v).decode(errors="replace")
            for k, v in (obj.get("data") or {}).items()
        }
        data.update(obj.get("stringData") or {})
        return data

    def read_configmap(
        self, namespace: str, name: str, optional: bool | None
    ) -> dict[str, str] | None:
        obj = self._read("configmaps", namespace, name, "configmap", optional)
        return None if obj is None else dict(obj.get("data") or {})

    def _read(
        self, plural: str, namespace: str, name: str, kind: str, optional: bool | None
    ) -> Json | None:
        read: Callable[..., Any] = (
            self.core.read_namespaced_secret
            if plural == "secrets"
            else self.core.read_namespaced_config_map
        )
        try:
            return json.loads(read(name, namespace, _preload_content=False).data)
        except ApiException as e:
            if e.status == 404:
                if optional:
                    return None
                raise ConfigError(f'{kind} "{name}" not found') from e
            raise

    def write_token_kubeconfig(self, path: Path, token: str, namespace: str) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "cluster",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "sa",
                    "context": {"cluster": "cluster", "user": "sa", "namespace": namespace},
                }
            ],
            "current-context": "sa",
        }
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)

    # -- nodes --

    def _node_status(self, node: NodeSpec) -> Json:
        capacity = {**NODE_CAPACITY, **node.extra_capacity}
        now = now_rfc3339()

        def cond(kind: str, status: str, reason: str, message: str) -> Json:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond("Ready", "True", "KubeletReady", "kubelet stand-in is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self._port(node)}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "osImage": "videopipe kubelet stand-in",
                "containerRuntimeVersion": "standin://1.0.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def _port(self, node: NodeSpec) -> int:
        server = self._servers.get(node.name)
        return server.port if server else 10250

    def _register(self, node: NodeSpec) -> None:
        labels = {
            "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            **node.labels,
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node.name, "labels": labels},
            "spec": {"taints": [dict(t) for t in node.taints]} if node.taints else {},
            "status": self._node_status(node),
        }
        try:
            self.core.create_node(body)
        except ApiException as e:
            if e.status != 409:
                raise
        # Create may or may not keep the status depending on the version: set it explicitly.
        self.core.patch_node_status(node.name, {"status": self._node_status(node)})
        self._renew_lease(node)

    def _renew_lease(self, node: NodeSpec) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": node.name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": node.name,
                "leaseDurationSeconds": 40,
                "renewTime": now_micro(),
            },
        }
        try:
            self.coordination.patch_namespaced_lease(node.name, "kube-node-lease", body)
        except ApiException as e:
            if e.status != 404:
                raise
            try:
                nodeobj = self.core.read_node(node.name)
                body["metadata"]["ownerReferences"] = [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": node.name,
                        "uid": nodeobj.metadata.uid,
                    }
                ]
                self.coordination.create_namespaced_lease("kube-node-lease", body)
            except ApiException as e2:
                # kube-node-lease is created by the apiserver shortly after start; try later.
                if e2.status not in (404, 409):
                    raise

    def _heartbeat_loop(self) -> None:
        last_status = 0.0
        while not self.stopping.wait(self.heartbeat_seconds):
            for node in self.nodes:
                try:
                    self._renew_lease(node)
                    if time.monotonic() - last_status > 30:
                        status = self._node_status(node)
                        # Only heartbeats move; transition times stay put.
                        for c in status["conditions"]:
                            c.pop("lastTransitionTime")
                        self.core.patch_node_status(
                            node.name, {"status": {"conditions": status["conditions"]}}
                        )
                except Exception as e:  # never let one failed heartbeat end the loop
                    log.warning("heartbeat %s: %s", node.name, e)
            if time.monotonic() - last_status > 30:
                last_status = time.monotonic()

    # -- pods --

    def _watch_loop(self) -> None:
        rv = ""
        while not self.stopping.is_set():
            try:
                if not rv:
                    rv = self._relist()
                w = watch.Watch()
                self._watch = w
                for event in w.stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector="spec.nodeName!=",
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=60,
                    _request_timeout=90,
                ):
                    if self.stopping.is_set():
                        return
                    kind, obj = event["type"], event["raw_object"]
                    if kind == "ERROR":
                        log.info("watch error %s: relisting", obj)
                        rv = ""
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion") or rv
                    if kind == "BOOKMARK":
                        continue
                    self._dispatch(obj, deleted=kind == "DELETED")
            except ApiException as e:
                if self.stopping.is_set():
                    return
                log.info("pod watch: %s %s: relisting", e.status, e.reason)
                rv = ""
                self.stopping.wait(0.5 if e.status == 410 else 1)
            except Exception as e:
                if self.stopping.is_set():
                    return
                log.warning("pod watch: %r: relisting", e)
                rv = ""
                self.stopping.wait(1)

    def _relist(self) -> str:
        resp = self.core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=", _preload_content=False
        )
        data = json.loads(resp.data)
        seen = set()
        for pod in data.get("items") or []:
            seen.add(pod["metadata"]["uid"])
            self._dispatch(pod, deleted=False)
        with self._lock:
            vanished = [r for uid, r in self._runs.items() if uid not in seen]
        for run in vanished:
            run.gone()
        return str(data["metadata"]["resourceVersion"])

    def _dispatch(self, pod: Json, deleted: bool) -> None:
        try:
            if pod.get("spec", {}).get("nodeName") not in self.node_names:
                return
            uid = pod["metadata"]["uid"]
            with self._lock:
                run = self._runs.get(uid)
                if run is None and not deleted:
                    phase = (pod.get("status") or {}).get("phase")
                    if phase in ("Succeeded", "Failed"):
                        return  # finished before this stand-in saw it (or after a relist)
                    run = PodRun(self, pod)
                    self._runs[uid] = run
                    run.start()
                    return
            if run is None:
                return
            if deleted:
                run.gone()
            elif run.finished.is_set():
                # A terminal pod being deleted: nothing runs, so remove it at once, as the
                # kubelet does (the apiserver usually gives terminal pods grace 0 already).
                meta = pod["metadata"]
                if meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds") != 0:
                    run._delete_now()
            else:
                run.update(pod)
        except Exception:
            log.error(
                "dispatch %s: %s", pod.get("metadata", {}).get("name"), traceback.format_exc()
            )


def main() -> int:
    """`python -m tests.cluster.kubelet KUBECONFIG WORKDIR`: run only the stand-in (debugging)."""
    logging.basicConfig(level=logging.INFO)
    kubelet = Kubelet(Path(sys.argv[1]), Path(sys.argv[2]))
    kubelet.start()
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        kubelet.stop()
    shutil.rmtree(kubelet.pods_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
