"""`make cluster`: run the test cluster in the foreground until Ctrl-C (or SIGTERM).

Starts the same `Cluster` as the pytest fixture, writes the admin kubeconfig to
`.cluster/kubeconfig`, applies `crds/*.yaml` if that folder exists, prints the `export
KUBECONFIG=...` line. Pod logs go to `.cluster/pod-logs/` (`tail -f` works while the cluster
runs) and the components' logs to `.cluster/run/control-plane/logs/`; both stay after exit and are
replaced by the next run.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from tests.cluster.controlplane import REPO
from tests.cluster.harness import Cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--state", type=Path, default=REPO / ".cluster", help="where to write")
    parser.add_argument("--no-crds", action="store_true", help="do not apply crds/*.yaml")
    args = parser.parse_args(argv)

    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    state: Path = args.state
    state.mkdir(parents=True, exist_ok=True)
    # Kept after exit for a look at what happened; replaced by the next run.
    for old in ("pod-logs", "run"):
        shutil.rmtree(state / old, ignore_errors=True)
    cluster = Cluster(state / "run", logdir=state / "pod-logs")
    print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler...", flush=True)
    cluster.start()
    try:
        kubeconfig = state / "kubeconfig"
        shutil.copyfile(cluster.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        crds = sorted((REPO / "crds").glob("*.yaml")) if (REPO / "crds").is_dir() else []
        if crds and not args.no_crds:
            cluster.apply(*crds)
            print(f"applied {len(crds)} CRD file(s) from crds/")
        print(f"cluster ready in {cluster.startup_seconds:.1f} s: {cluster.server}")
        print("nodes: cpu-node, gpu-node (kubelet stand-in); pod logs in", state / "pod-logs")
        print("component logs in", cluster.control_plane.dir / "logs")
        print(f"export KUBECONFIG={kubeconfig}", flush=True)
        print("Ctrl-C to stop", flush=True)
        while not stop["signal"]:
            time.sleep(0.2)
    finally:
        print("stopping...", flush=True)
        cluster.stop()
        (state / "kubeconfig").unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
