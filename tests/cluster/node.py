"""`RealNode`: a real kubelet with containerd and runc, joined to the test control plane.

Why: the kubelet stand-in (`kubelet.py`) runs pods as local processes, so it never proves the
images, the pod security settings, the probes, memory limits or `activeDeadlineSeconds` as a
node enforces them. This node does: the kubelet built from the same Kubernetes module as the
control plane (`build-kubelet.sh`), containerd and runc from Debian, the images imported with
`ctr images import`.

It must not change the host it runs on, which other test sessions share:

- containerd and the kubelet run in a private mount namespace (`unshare --mount`): `/run`,
  `/var/lib` and `/var/log` are tmpfs there, and the sysctl files the kubelet writes
  (`kernel.panic`, `kernel.panic_on_oops`, `vm.overcommit_memory`...) are bind-mounted copies.
  Every mount vanishes with the namespace's last process. containerd's images live under the
  node's folder on disk;
- the kubelet's cgroups go under a `cgroupRoot` of its own, removed at the end;
- the kubelet finds no `iptables` (its PATH leaves out the sbin folders), so it adds no
  KUBE-FIREWALL rule to the shared host firewall; `stop()` still checks that no KUBE-* chain
  appeared, and removes any;
- pods use the host's network (`placement.py` puts them there), so there is no bridge; the node
  only has a loopback CNI network so that containerd reports the network ready;
- the kubelet's own server listens on 127.0.0.1 only.

The node registers as `real-node` with the label and NoSchedule taint `REAL_NODE_LABEL`, so that
only pods that ask for it (namespaces that `placement.py` serves) run here. `stop()` ends every
process it started, removes its cgroups, folder and mounts, and asserts that nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from hashlib import sha256
from io import BytesIO
from pathlib import Path

import yaml

from tests.cluster.controlplane import REPO, ControlPlane, write_kubeconfig
from tests.support.ports import free_port

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build-kubelet.sh"
NODE_NAME = "real-node"
REAL_NODE_LABEL = "videopipe.dev/test-real-node"
PAUSE_IMAGE = "localhost/videopipe-pause:1"
COMMANDS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "unshare", "mount")
CNI_BIN = Path("/usr/lib/cni")
CGROUP_FS = Path("/sys/fs/cgroup")
# What the kubelet sets at start (pkg/kubelet/cm setupKernelTunables): copies are bound over them.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
IPTABLES = ("iptables", "ip6tables")
IPTABLES_TABLES = ("filter", "nat", "mangle")


def missing_prerequisites() -> list[str]:
    """Why this machine cannot run the node ([] if it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (containerd, runc and the kubelet need it)")
    absent = [c for c in COMMANDS if shutil.which(c) is None]
    if absent:
        problems.append(f"commands missing: {' '.join(absent)} (`make node-packages`)")
    if not (CNI_BIN / "loopback").exists():
        problems.append(f"{CNI_BIN}/loopback missing (`make node-packages`)")
    return problems


def node_binaries() -> Path:
    """The folder with `kubelet` and `pause`, built (or found in the cache) by the script."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, capture_output=True, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def pause_image_tar(pause_binary: Path, path: Path) -> Path:
    """A one-layer docker-archive with the static `pause` binary as its entrypoint."""
    layer = BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(pause_binary), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        with pause_binary.open("rb") as f:
            tar.addfile(info, f)
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256(layer_bytes).hexdigest()}"]},
    }
    config_bytes = json.dumps(config).encode()
    manifest = [{"Config": "config.json", "RepoTags": [PAUSE_IMAGE], "Layers": ["layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, data in [
            ("layer.tar", layer_bytes),
            ("config.json", config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))
    return path


def mount_namespace(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/mnt")
    return None


def pids_in_namespace(namespace: str) -> list[int]:
    """Every process whose mount namespace is `namespace` (e.g. 'mnt:[4026532]')."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and mount_namespace(int(entry.name)) == namespace:
            out.append(int(entry.name))
    return out


def iptables_chains() -> set[tuple[str, str, str]]:
    """(command, table, chain) of every KUBE-* chain on the host."""
    chains = set()
    for command in IPTABLES:
        if shutil.which(command) is None:
            continue
        for table in IPTABLES_TABLES:
            result = subprocess.run([command, "-t", table, "-S"], capture_output=True, text=True)
            for line in result.stdout.splitlines():
                parts = line.split()
                if parts[:1] == ["-N"] and parts[1].startswith("KUBE-"):
                    chains.add((command, table, parts[1]))
    return chains


def remove_chain(command: str, table: str, chain: str) -> None:
    """Delete the rules that jump to `chain`, then the chain itself."""
    listing = subprocess.run([command, "-t", table, "-S"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        args = shlex.split(line)
        if args[:1] == ["-A"] and "-j" in args and args[args.index("-j") + 1] == chain:
            subprocess.run([command, "-t", table, "-D", *args[1:]], check=False)
    subprocess.run([command, "-t", table, "-F", chain], check=False)
    subprocess.run([command, "-t", table, "-X", chain], check=False)


class RealNode:
    """containerd + runc + kubelet in a private mount namespace, registered as `real-node`."""

    def __init__(
        self,
        control_plane: ControlPlane,
        bin_dir: Path | None = None,
        name: str = NODE_NAME,
    ) -> None:
        self.control_plane = control_plane
        self.name = name
        self._bin_dir = bin_dir
        # Short: containerd's socket path must fit in a sockaddr_un (108 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="vp-node-", dir="/tmp"))
        self.cgroup_root = f"/{self.dir.name}"
        self.socket = self.dir / "containerd.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._namespace: str | None = None
        self._chains_before: set[tuple[str, str, str]] = set()
        self.startup_seconds = 0.0
        self.teardown_seconds = 0.0

    # -- lifecycle --

    def start(self) -> RealNode:
        t0 = time.monotonic()
        bins = self._bin_dir or node_binaries()
        self._chains_before = iptables_chains()
        try:
            self._write_files(bins)
            self._make_cgroups()
            self._launch()
            self._wait(lambda: self.socket.exists(), 30, "containerd socket")
            self.ctr("version")
            self.import_image(self.dir / "pause.tar")
        except BaseException:
            self.stop(check=False)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self, check: bool = True) -> None:
        """End every process, cgroup, mount, chain and file of the node; assert none is left."""
        t0 = time.monotonic()
        problems: list[str] = []
        if self._proc is not None:
            kubelet = self._pids_named("kubelet")
            for pid in kubelet:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._wait_quietly(lambda: not self._pids_named("kubelet"), 15)
            self._kill_cgroup_processes()
            for pid in self._pids_named("containerd"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._wait_quietly(lambda: not self._pids_named("containerd"), 15)
            self._kill_namespace()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=15)
            if self._proc.poll() is None:
                problems.append(f"node launcher {self._proc.pid} still running")
            self._proc = None
        problems += self._remove_cgroups()
        for chain in sorted(iptables_chains() - self._chains_before):
            remove_chain(*chain)
            problems.append(f"iptables chain {chain} was created (removed now)")
        if self._namespace and pids_in_namespace(self._namespace):
            problems.append(f"processes left in the node's mount namespace {self._namespace}")
        mounts = [
            line
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(self.dir) in line
        ]
        if mounts:
            problems.append(f"mounts left on the host: {mounts}")
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            problems.append(f"{self.dir} could not be removed")
        self.teardown_seconds = time.monotonic() - t0
        if check:
            assert not problems, "real node left things behind: " + "; ".join(problems)

    # -- what tests use --

    def ctr(self, *args: str, input: bytes | None = None, timeout: float = 300) -> str:
        """`ctr -n k8s.io <args>` against this node's containerd; its stdout."""
        command = ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args]
        result = subprocess.run(command, input=input, capture_output=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(command)} exited {result.returncode}: {result.stderr.decode()}"
            )
        return result.stdout.decode(errors="replace")

    def import_image(self, archive: Path) -> None:
        """Load a docker-archive (or OCI) tarball into the node's image store, unpacked."""
        self.ctr("images", "import", "--no-unpack=false", str(archive))

    def images(self) -> list[str]:
        return self.ctr("images", "list", "--quiet").split()

    def container_id(self, namespace: str, pod: str, container: str) -> str | None:
        """The containerd id of a running container of a pod on this node (None if none)."""
        listing = self.ctr(
            "containers",
            "list",
            "--quiet",
            f'labels."io.kubernetes.pod.namespace"=={namespace},'
            f'labels."io.kubernetes.pod.name"=={pod},'
            f'labels."io.kubernetes.container.name"=={container}',
        ).split()
        running = [c for c in listing if self._task_running(c)]
        return running[-1] if running else None

    def exec(self, container_id: str, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the running container, as its own process spec says (user,
        capabilities, no_new_privs, seccomp): `ctr tasks exec`."""
        exec_id = f"probe-{time.monotonic_ns()}"
        command = [
            "ctr",
            "--address",
            str(self.socket),
            "--namespace",
            "k8s.io",
            "tasks",
            "exec",
            "--exec-id",
            exec_id,
            # ctr makes the IO FIFOs; /run/containerd is private to the node's namespace.
            "--fifo-dir",
            str(self.dir / "fifo"),
            container_id,
            *argv,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def pod_logs(self, since: float = 0.0) -> dict[str, str]:
        """`{'<namespace>/<pod>/<container>/<n>.log': log}` from the node's /var/log/pods, for
        the logs written to after `since` (epoch seconds)."""
        pids = self._pids_named("kubelet") or self._pids_named("containerd")
        out: dict[str, str] = {}
        if not pids:
            return out
        root = Path(f"/proc/{pids[0]}/root/var/log/pods")
        with contextlib.suppress(OSError):
            for path in sorted(root.glob("*/*/*.log")):
                if path.stat().st_mtime < since:
                    continue
                ns_pod = path.parent.parent.name.rsplit("_", 1)[0].replace("_", "/", 1)
                out[f"{ns_pod}/{path.parent.name}/{path.name}"] = path.read_text(errors="replace")
        return out

    def log(self, component: str) -> str:
        path = self.dir / "logs" / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- internals --

    def _write_files(self, bins: Path) -> None:
        for sub in (
            "logs",
            "fifo",
            "containerd/root",
            "containerd/state",
            "cni",
            "opt",
            "sysctl",
            "pki",
        ):
            (self.dir / sub).mkdir(parents=True)
        pause_image_tar(bins / "pause", self.dir / "pause.tar")
        cp = self.control_plane
        cert, key = cp.issue(f"system:node:{self.name}", ["system:nodes"])
        (self.dir / "pki" / "node.crt").write_bytes(cert)
        (self.dir / "pki" / "node.key").write_bytes(key)
        cert, key = cp.issue(self.name, server=True, ips=["127.0.0.1"])
        (self.dir / "pki" / "serving.crt").write_bytes(cert)
        (self.dir / "pki" / "serving.key").write_bytes(key)
        write_kubeconfig(
            self.dir / "kubelet.kubeconfig",
            cp.server,
            cp.ca_file.read_bytes(),
            user=f"system:node:{self.name}",
            cert_file=self.dir / "pki" / "node.crt",
            key_file=self.dir / "pki" / "node.key",
        )
        for sysctl in SYSCTLS:
            copy = self.dir / "sysctl" / sysctl.replace("/", ".")
            copy.write_text(Path("/proc/sys", sysctl).read_text())
        (self.dir / "cni" / "10-loopback.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "videopipe-loopback",
                    "plugins": [{"type": "loopback"}],
                }
            )
        )
        (self.dir / "containerd.toml").write_text(self._containerd_config())
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(self._kubelet_config()))
        (self.dir / "launch.sh").write_text(self._launch_script(bins / "kubelet"))

    def _containerd_config(self) -> str:
        d = self.dir / "containerd"
        runc = shutil.which("runc")
        return f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{self.dir / "containerd.ttrpc.sock"}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{self.dir / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Without it runc fails here: root lacks CAP_SYS_RESOURCE, so it may not lower oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.dir / "cni"}"
    max_conf_num = 1
"""

    def _kubelet_config(self) -> dict[str, object]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine mounts cgroup v1 controllers (v2 only holds hugetlb).
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": "127.0.0.1",
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzPort": 0,
            "tlsCertFile": str(self.dir / "pki" / "serving.crt"),
            "tlsPrivateKeyFile": str(self.dir / "pki" / "serving.key"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.control_plane.ca_file)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "registerWithTaints": [
                {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
            ],
            "failSwapOn": False,
            "oomScoreAdj": 0,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            # The images are imported, never pulled: the kubelet must not collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%"},
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
        }

    def _launch_script(self, kubelet: Path) -> str:
        d, logs = self.dir, self.dir / "logs"
        binds = "\n".join(
            f"mount --bind {d / 'sysctl' / s.replace('/', '.')} /proc/sys/{s}" for s in SYSCTLS
        )
        # No /usr/sbin or /sbin: the kubelet then finds no iptables and writes no host chain.
        kubelet_path = "/usr/local/bin:/usr/bin:/bin"
        return f"""#!/bin/bash
# Runs inside `unshare --mount --propagation private`: nothing mounted here reaches the host.
set -euo pipefail
mount -t tmpfs -o mode=0755 videopipe-node-run /run
mount -t tmpfs -o mode=0755 videopipe-node-lib /var/lib
mount -t tmpfs -o mode=0755 videopipe-node-log /var/log
{binds}
containerd --config {d / "containerd.toml"} >{logs / "containerd.log"} 2>&1 &
for _ in $(seq 300); do [ -S {self.socket} ] && break; sleep 0.1; done
PATH={kubelet_path} {kubelet} --config={d / "kubelet.yaml"} \\
    --kubeconfig={d / "kubelet.kubeconfig"} --hostname-override={self.name} \\
    --node-labels={REAL_NODE_LABEL}=true --v=2 >{logs / "kubelet.log"} 2>&1 &
wait
"""

    def _launch(self) -> None:
        self._proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--fork",
                "bash",
                str(self.dir / "launch.sh"),
            ],
            stdout=(self.dir / "logs" / "launch.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait(lambda: self._pids_named("containerd"), 30, "containerd started")
        self._namespace = mount_namespace(self._pids_named("containerd")[0])
        assert self._namespace != mount_namespace(os.getpid()), "not in a namespace of its own"

    def _pids_named(self, name: str) -> list[int]:
        if self._namespace is None:
            candidates = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        else:
            candidates = pids_in_namespace(self._namespace)
        out = []
        for pid in candidates:
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name == name and str(self.dir).encode() in b" ".join(
                    argv
                ):
                    out.append(pid)
        return out

    def _task_running(self, container_id: str) -> bool:
        try:
            listing = self.ctr("tasks", "list")
        except RuntimeError:
            return False
        return any(
            line.split()[:1] == [container_id] and "RUNNING" in line
            for line in listing.splitlines()
        )

    def _make_cgroups(self) -> None:
        """The kubelet wants its cgroupRoot to exist in every hierarchy; cpuset's needs the
        parent's CPUs and memory nodes, or nothing could run in it."""
        for hierarchy in CGROUP_FS.iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            top = hierarchy / self.cgroup_root.lstrip("/")
            top.mkdir()
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).exists():
                    (top / name).write_text((hierarchy / name).read_text())

    def _cgroup_dirs(self) -> list[Path]:
        """Every cgroup folder under the node's cgroupRoot, deepest first."""
        found: list[Path] = []
        for hierarchy in CGROUP_FS.iterdir():
            top = hierarchy / self.cgroup_root.lstrip("/")
            if top.is_dir():
                found += [p for p in top.rglob("*") if p.is_dir()] + [top]
        return sorted(found, key=lambda p: len(p.parts), reverse=True)

    def _kill_cgroup_processes(self) -> None:
        """SIGKILL what runs in the pods' cgroups (containers, pause, execs), until none."""

        def pids() -> set[int]:
            out: set[int] = set()
            for folder in self._cgroup_dirs():
                with contextlib.suppress(OSError):
                    out |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            return out

        def killed() -> bool:
            left = pids()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return not left

        self._wait_quietly(killed, 20)

    def _kill_namespace(self) -> None:
        if self._namespace is None:
            return
        namespace = self._namespace

        def killed() -> bool:
            left = pids_in_namespace(namespace)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return not left

        self._wait_quietly(killed, 20)

    def _remove_cgroups(self) -> list[str]:
        def removed() -> bool:
            for folder in self._cgroup_dirs():
                with contextlib.suppress(OSError):
                    folder.rmdir()
            return not self._cgroup_dirs()

        self._wait_quietly(removed, 20)
        left = self._cgroup_dirs()
        return [f"cgroups left: {[str(p) for p in left[:5]]}"] if left else []

    def _wait(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"real node exited while waiting for {what}:\n{self.tails()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"real node: no {what} after {timeout} s:\n{self.tails()}")
            time.sleep(0.1)

    @staticmethod
    def _wait_quietly(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.2)

    def tails(self) -> str:
        out = []
        for name in ("launch", "containerd", "kubelet"):
            lines = self.log(name).splitlines()[-25:]
            out.append(f"--- {name}.log ---\n" + "\n".join(lines))
        return "\n".join(out)


@contextlib.contextmanager
def running_node(control_plane: ControlPlane) -> Iterator[RealNode]:
    node = RealNode(control_plane).start()
    try:
        yield node
    finally:
        node.stop()


__all__ = [
    "NODE_NAME",
    "REAL_NODE_LABEL",
    "REPO",
    "RealNode",
    "missing_prerequisites",
    "node_binaries",
    "running_node",
]
