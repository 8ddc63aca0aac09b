"""The operator in-process on the real control plane, restarted after every injected crash.

A `Replay` is one world: its own namespace (Pod Security `restricted`) on the test cluster, its
own bucket on the moto server, a credentials Secret and VideoSources, all made with the
end-to-end helper `Videopipe` (`tests/e2e/conftest.py`). The operator is not a subprocess here
but its own code called in this process, built as `videopipe_operator.__main__` builds it: a
`Kube` over `kube.load_client(<kubeconfig>)`, a `Config` from the environment, `S3Clients`, a
`Context`. Only the boundary is wrapped (`faults.FaultyKube`, `faults.s3_client_with_faults`).

What runs: `reconcile_source` is the source daemon's pass (`daemon.run` calls it in a loop) and
`cancel.cancel` the VideoJob delete handler. kopf itself does not run, so `Replay` plays its two
parts that matter here: it calls the delete handler for every VideoJob being deleted, and then
removes the finalizer, which is a write of the operator process and so a crash point too. Jobs
are run by the real Job controller, scheduler and kubelet stand-in: each pod is
`videopipe transcribe` on the video in S3. Between passes `drive` waits (polling, with a
deadline) until no Job is unfinished, so that a pass sees what the workers did.

After a `Crash` the next pass runs in a new operator: a fresh `Context`, `ApiClient` and boto3
clients, nothing remembered. `replay_each` runs many worlds at once (threads: they spend their
time waiting for the cluster and the workers).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from videopipe_operator import cancel, kube, metrics
from videopipe_operator.config import Config
from videopipe_operator.constants import FINALIZER
from videopipe_operator.context import Context
from videopipe_operator.reconcile import PassResult, reconcile_source
from videopipe_operator.sources import S3Clients

from tests.cluster.harness import Cluster, unless_gone
from tests.e2e.conftest import GROUP, VERSION, Videopipe
from tests.operator.faults import Crash, Faults, FaultyKube, s3_client_with_faults

Json = dict[str, Any]
T = TypeVar("T")
SOURCE = "talks"
FOLDERS = ("pending", "processing", "completed", "failed")
WORKERS = 4  # worlds at once: enough to keep two cores busy while others wait for pods


def job_finished(job: client.V1Job) -> bool:
    return any(
        c.type in ("Complete", "Failed") and c.status == "True"
        for c in (job.status.conditions or [])
    )


@dataclass
class Replay:
    """One world on the cluster, and the operator that works on it (restarted after crashes)."""

    vp: Videopipe
    faults: Faults = field(default_factory=Faults)
    passes: int = 0
    restarts: int = -1  # the first operator is a start, not a restart
    released: bool = False
    _api: client.ApiClient | None = None

    @classmethod
    def create(
        cls, cluster: Cluster, s3: Any, s3_endpoint: str, workdir: Path, **spec: Any
    ) -> Replay:
        """A new namespace and bucket with the S3 Secret and a VideoSource `talks` of `spec`."""
        tag = uuid.uuid4().hex[:10]
        bucket = f"replay-{tag}"
        s3.create_bucket(Bucket=bucket)
        namespace = cluster.create_namespace(f"replay-{tag}")
        vp = Videopipe(cluster, namespace, bucket, s3, s3_endpoint, workdir)
        vp.create_secret()
        vp.create_source(SOURCE, **spec)
        return cls(vp)

    @property
    def namespace(self) -> str:
        return self.vp.namespace

    # -- the operator process --

    def operator(self) -> Context:
        """A new operator process: what `__main__` builds, with the boundary wrapped."""
        self.close()
        self.restarts += 1
        self._api = kube.load_client(str(self.vp.cluster.kubeconfig))
        config = Config.from_env()
        return Context(
            kube=FaultyKube(self._api, self.faults),
            config=config,
            s3=S3Clients(
                config, make=s3_client_with_faults(self.faults), instrument=metrics.instrument_s3
            ),
            namespaces=(self.namespace,),
        )

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def one_pass(self, ctx: Context, source: str = SOURCE) -> PassResult | None:
        """The source daemon's pass, then kopf's delete handling of VideoJobs being deleted."""
        self.passes += 1
        result = reconcile_source(ctx, self.namespace, source)
        for body in self.vp.videojobs():
            if body["metadata"].get("deletionTimestamp"):
                cancel.cancel(ctx, body)
                self.remove_finalizer(body)
        return result

    def remove_finalizer(self, body: Json) -> None:
        """What kopf does once the delete handler succeeded: drop its finalizer (a write)."""
        self.faults.before("kopf.remove_finalizer", "", body["metadata"]["name"])
        self._drop_finalizer(body)

    def _drop_finalizer(self, body: Json) -> None:
        finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
        unless_gone(
            self.vp.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "videojobs",
            body["metadata"]["name"],
            {"metadata": {"finalizers": finalizers or None}},
        )

    def drive(self, settled: Callable[[], bool], max_passes: int = 20) -> int:
        """Passes (a new operator after each crash) until `settled()`; how many it took."""
        ctx = self.operator()
        try:
            for n in range(max_passes):
                try:
                    self.one_pass(ctx)
                except Crash:
                    ctx = self.operator()
                    continue
                self.wait_jobs()
                if settled():
                    return n + 1
        finally:
            self.close()
        raise AssertionError(f"not settled after {max_passes} passes: {self.folders()}")

    # -- the world as a user sees it --

    def wait_jobs(self, timeout: float = 240) -> None:
        """Until the real Job controller reports every Job in the namespace finished."""
        self.vp.wait(
            lambda: all(job_finished(j) for j in self.vp.jobs()),
            timeout=timeout,
            message="every Job finished",
        )

    def folders(self) -> dict[str, list[str]]:
        return self.vp.folders()

    def videojobs(self) -> list[Json]:
        return self.vp.videojobs()

    def pods_per_job(self) -> dict[str, int]:
        """How many pods each Job ran (the Job controller labels them with its name)."""
        counts: dict[str, int] = {}
        for pod in self.vp.cluster.core.list_namespaced_pod(self.namespace).items:
            job = (pod.metadata.labels or {}).get("batch.kubernetes.io/job-name")
            if job:
                counts[job] = counts.get(job, 0) + 1
        return counts

    def release(self) -> None:
        """Teardown: let every VideoJob go (no operator runs now) and delete the namespace."""
        self.close()
        if self.released:
            return
        self.released = True
        try:
            for body in self.vp.videojobs():
                self._drop_finalizer(body)
        finally:
            self.vp.cluster.delete_namespace(self.namespace)


@contextmanager
def worlds(
    cluster: Cluster, s3: Any, s3_endpoint: str, workdir: Path
) -> Iterator[Callable[..., Replay]]:
    """A factory of worlds; every world made is released on exit."""
    made: list[Replay] = []

    def new(**spec: Any) -> Replay:
        replay = Replay.create(cluster, s3, s3_endpoint, workdir, **spec)
        made.append(replay)
        return replay

    try:
        yield new
    finally:
        for replay in made:
            replay.release()


def replay_each(items: Sequence[T], run: Callable[[T], None], workers: int = WORKERS) -> float:
    """`run(item)` for every item, `workers` at a time; one AssertionError naming every failure
    (so that one broken crash point does not hide the others). Returns the seconds it took."""
    started = time.monotonic()
    failures: list[str] = []

    def guarded(item: T) -> None:
        try:
            run(item)
        except Exception as e:
            failures.append(f"{item}: {type(e).__name__}: {e}")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(guarded, items))
    if failures:
        raise AssertionError(f"{len(failures)} of {len(items)} failed:\n" + "\n\n".join(failures))
    return time.monotonic() - started


__all__ = ["FOLDERS", "SOURCE", "WORKERS", "Replay", "job_finished", "replay_each", "worlds"]
