"""Backpressure and routing: concurrency measured from the Job objects, GPU for long videos."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kubernetes import watch

from tests.e2e.conftest import WORKER_IMAGE, Videopipe

pytestmark = pytest.mark.cluster


class JobWatcher:
    """Watches the namespace's Jobs and records the most that were unfinished at once."""

    def __init__(self, videopipe: Videopipe) -> None:
        self.videopipe = videopipe
        self.unfinished: dict[str, bool] = {}
        self.max_unfinished = 0
        self.seen: set[str] = set()
        self._stopped = False
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._follow()
        except Exception:
            if not self._stopped:
                raise

    def _follow(self) -> None:
        stream = self._watch.stream(
            self.videopipe.cluster.batch.list_namespaced_job,
            self.videopipe.namespace,
            timeout_seconds=600,
        )
        for event in stream:
            job = event["object"]
            name = job.metadata.name
            self.seen.add(name)
            done = any(
                c.type in ("Complete", "Failed") and c.status == "True"
                for c in (job.status.conditions or [])
            )
            if event["type"] == "DELETED" or done:
                self.unfinished.pop(name, None)
            else:
                self.unfinished[name] = True
            self.max_unfinished = max(self.max_unfinished, len(self.unfinished))

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def test_max_concurrent_jobs_is_never_exceeded(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    videopipe.create_source(maxConcurrentJobs=2, queueWindow=1)
    watcher = JobWatcher(videopipe)
    max_videojobs = 0

    def count_active() -> int:
        vjs = videopipe.videojobs()
        return sum(
            1 for v in vjs if (v.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )

    for name, path in talk_videos.items():
        videopipe.upload(f"{name}.mp4", path)
    videopipe.start_operator()
    expected = sorted(f"{n}.mp4" for n in talk_videos)

    def done() -> bool:
        nonlocal max_videojobs
        max_videojobs = max(max_videojobs, count_active())
        return videopipe.keys("completed") == expected

    videopipe.wait(done, timeout=400, message="all six videos completed")
    watcher.stop()
    assert len(watcher.seen) == len(talk_videos)
    assert watcher.max_unfinished == 2, watcher.max_unfinished  # reached, never exceeded
    assert max_videojobs <= 3  # maxConcurrentJobs + queueWindow: the rest waited in S3
    backlog = videopipe.source()["status"]["backlog"]
    assert backlog == 0


def test_long_video_goes_to_the_gpu_node(
    videopipe: Videopipe, talk_videos: dict[str, Path], long_video: Path
) -> None:
    short, long_ = talk_videos["hello"], long_video
    # The operator estimates length from size; pick a bitrate that puts the threshold between.
    threshold_bytes = (short.stat().st_size + long_.stat().st_size) // 2
    min_seconds = 10
    kbps = max(1, threshold_bytes * 8 // (min_seconds * 1000))
    videopipe.create_source(
        accelerator={
            "policy": "auto",
            "gpuMinDurationSeconds": min_seconds,
            "assumedBitrateKbps": kbps,
        },
        # The stand-in GPU node has no CUDA: the operator's `--device cuda` would (rightly) fail
        # with NoGpu. extraArgs come last, so this lets the worker use the CPU it really has.
        worker={"image": WORKER_IMAGE, "extraArgs": ["--device", "auto"]},
    )
    videopipe.start_operator()
    videopipe.upload("short.mp4", short)
    videopipe.upload("long.mp4", long_)
    videopipe.wait(lambda: videopipe.keys("completed") == ["long.mp4", "short.mp4"], timeout=180)

    pods = {
        p.metadata.labels["videopipe.dev/videojob"]: p
        for p in videopipe.cluster.core.list_namespaced_pod(videopipe.namespace).items
    }
    long_vj, short_vj = videopipe.videojob_for("long.mp4"), videopipe.videojob_for("short.mp4")
    assert long_vj["spec"]["accelerator"] == "gpu" and short_vj["spec"]["accelerator"] == "cpu"
    gpu_pod, cpu_pod = pods[long_vj["metadata"]["name"]], pods[short_vj["metadata"]["name"]]
    assert gpu_pod.spec.node_name == "gpu-node" and cpu_pod.spec.node_name == "cpu-node"
    assert gpu_pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    args = gpu_pod.spec.containers[0].args
    assert args[args.index("--device") + 1] == "cuda"  # what the operator asks of a GPU node
    assert any(t.key == "nvidia.com/gpu" for t in gpu_pod.spec.tolerations)
    videopipe.wait(
        lambda: (
            {v["spec"]["path"]: v["status"]["phase"] for v in videopipe.videojobs()}
            == {"long.mp4": "Succeeded", "short.mp4": "Succeeded"}
        )
    )
    out = videopipe.cluster.kubectl("get", "vj", "-n", videopipe.namespace).stdout
    assert any("long.mp4" in line and " gpu " in line for line in out.splitlines())
