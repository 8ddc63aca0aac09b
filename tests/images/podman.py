"""Run the built images under podman the way a kubelet runs the operator's pods.

`pod_flags()` turns the pod spec that the operator's own code builds (`manifests.build_job`) into
podman flags, field by field, and raises on any field it has no mapping for: a restriction added
to the Job later must be mapped here too, or the image tests fail instead of quietly testing less.
Containers get a unique name and are removed when the run ends, whatever happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.utils import parse_quantity

Json = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "images" / "containers.conf"
OPERATOR_IMAGE = "ghcr.io/videopipe/videopipe-operator:test"
WORKER_IMAGE = "ghcr.io/videopipe/videopipe-worker:test"

_POD_FIELDS = {
    "restartPolicy",
    "automountServiceAccountToken",  # no token is mounted here either
    "enableServiceLinks",  # no service variables here either
    "serviceAccountName",
    "securityContext",
    "containers",
    "volumes",
}
_CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "resources",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
    "securityContext",
    "imagePullPolicy",
}
_SECURITY_FIELDS = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "seccompProfile",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "capabilities",
}


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc


def _unknown(kind: str, keys: set[str], known: set[str]) -> None:
    if keys - known:
        raise NotImplementedError(f"no podman mapping for {kind} fields {sorted(keys - known)}")


def security_flags(pod: Json, container: Json) -> list[str]:
    """The pod's and the container's securityContext (the container's wins, as in Kubernetes)."""
    sc = {**pod, **container}
    _unknown("securityContext", set(sc), _SECURITY_FIELDS)
    user, group = sc.get("runAsUser"), sc.get("runAsGroup")
    if sc.get("runAsNonRoot") and not user:
        raise ValueError("runAsNonRoot without a numeric runAsUser: the kubelet would refuse it")
    flags = ["--user", f"{user}:{group if group is not None else user}"] if user else []
    if "fsGroup" in pod:
        flags += ["--group-add", str(pod["fsGroup"])]
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        flags += ["--security-opt", "seccomp=unconfined"]
    elif seccomp not in (None, "RuntimeDefault"):  # RuntimeDefault is podman's default profile
        raise NotImplementedError(f"seccompProfile {seccomp}")
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        # Only what the pod mounts is writable: none of podman's own tmpfs on /tmp, /run...
        flags += ["--read-only", "--read-only-tmpfs=false"]
    caps = sc.get("capabilities") or {}
    flags += [f"--cap-drop={c}" for c in caps.get("drop", [])]
    flags += [f"--cap-add={c}" for c in caps.get("add", [])]
    return flags


def resource_flags(resources: Json) -> list[str]:
    """Limits as the kubelet sets them: a hard memory limit with no swap, CFS quota, shares."""
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    _unknown("resources", set(limits) | set(requests), {"cpu", "memory"})
    flags: list[str] = []
    if "memory" in limits:
        limit = int(parse_quantity(limits["memory"]))
        flags += ["--memory", str(limit), "--memory-swap", str(limit)]
    if "memory" in requests:
        flags += ["--memory-reservation", str(int(parse_quantity(requests["memory"])))]
    if "cpu" in limits:
        flags += ["--cpus", str(float(parse_quantity(limits["cpu"])))]
    if "cpu" in requests:
        flags += ["--cpu-shares", str(max(2, int(parse_quantity(requests["cpu"]) * 1024)))]
    return flags


def env_flags(env: list[Json], secrets: Mapping[str, Mapping[str, str]]) -> list[str]:
    flags: list[str] = []
    for var in env:
        if "value" in var:
            flags += ["--env", f"{var['name']}={var['value']}"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is None:
            if ref.get("optional"):
                continue
            raise KeyError(f"secret {ref['name']}/{ref['key']} for {var['name']}")
        flags += ["--env", f"{var['name']}={value}"]
    return flags


def volume_flags(pod: Json, container: Json, claims: Mapping[str, Path]) -> list[str]:
    """emptyDirs as tmpfs; a PersistentVolumeClaim as a bind mount of the host folder that
    `claims` maps its name to (what the claim's volume would hold), read-only when asked."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    flags: list[str] = []
    for mount in container.get("volumeMounts", []):
        _unknown("volumeMount", set(mount), {"name", "mountPath", "readOnly", "subPath"})
        volume = volumes[mount["name"]]
        _unknown("volume", set(volume), {"name", "emptyDir", "persistentVolumeClaim"})
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            folder = claims[claim["claimName"]] / mount.get("subPath", "")
            ro = mount.get("readOnly") or claim.get("readOnly")
            flags += ["--volume", f"{folder}:{mount['mountPath']}:{'ro' if ro else 'rw'}"]
            continue
        size = (volume["emptyDir"] or {}).get("sizeLimit")
        options = "rw,mode=1777" + (f",size={int(parse_quantity(size))}" if size else "")
        flags += ["--tmpfs", f"{mount['mountPath']}:{options}"]
    return flags


@dataclass
class PodRun:
    """A finished container: its exit code, output, and termination message."""

    code: int
    stdout: str
    stderr: str
    termination_message: str

    @property
    def report(self) -> Json:
        return json.loads(self.termination_message) if self.termination_message else {}

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}"


def pod_flags(
    pod: Json,
    secrets: Mapping[str, Mapping[str, str]],
    workdir: Path,
    claims: Mapping[str, Path] | None = None,
) -> tuple[list[str], Path, list[str], list[str]]:
    """(podman flags, termination-log file, command, args) for the pod's only container."""
    _unknown("pod spec", set(pod), _POD_FIELDS)
    (container,) = pod["containers"]
    _unknown("container", set(container), _CONTAINER_FIELDS)
    flags = security_flags(pod.get("securityContext", {}), container.get("securityContext", {}))
    flags += resource_flags(container.get("resources", {}))
    flags += env_flags(container.get("env", []), secrets)
    flags += volume_flags(pod, container, claims or {})
    # The kubelet bind-mounts a file, writable by any uid, at terminationMessagePath.
    log = workdir / f"termination-log-{uuid.uuid4().hex[:8]}"
    log.touch()
    log.chmod(0o666)
    path = container.get("terminationMessagePath", "/dev/termination-log")
    flags += ["--volume", f"{log}:{path}:rw"]
    return flags, log, container.get("command", []), container.get("args", [])


@contextmanager
def container_name() -> Iterator[str]:
    """A unique container name; the container is gone when the block ends."""
    name = f"videopipe-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def run_pod(
    pod: Json,
    image: str,
    workdir: Path,
    *,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    command: list[str] | None = None,
    timeout: float = 900,
    claims: Mapping[str, Path] | None = None,
) -> PodRun:
    """Run the pod's container in `image` to the end; `command` replaces command and args;
    `claims`: the host folder behind each PersistentVolumeClaim the pod mounts."""
    flags, log, cmd, args = pod_flags(pod, secrets or {}, workdir, claims)
    if command is not None:
        cmd, args = command[:1], command[1:]
    with container_name() as name:
        proc = subprocess.run(
            ["podman", "run", "--rm", "--name", name, "--pull=never", "--network=host"]
            + flags
            + (["--entrypoint", json.dumps(cmd)] if cmd else [])
            + [image, *args],
            capture_output=True,
            text=True,
            env=podman_env(),
            timeout=timeout,
        )
    return PodRun(proc.returncode, proc.stdout, proc.stderr, log.read_text().strip())


def image_size(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
