"""End-to-end fixtures: the real operator process on the real control plane, with real media.

Real: the control plane (`cluster` fixture: etcd, kube-apiserver, controller-manager, scheduler
built from source), the CRDs from `crds/`, the operator (`.venv/bin/videopipe operator`, a
subprocess with its own KUBECONFIG, killed and restarted like a pod), the worker (each Job's pod
runs `videopipe transcribe` as a local process through the kubelet stand-in), faster-whisper
tiny.en, ffmpeg, espeak-ng speech, and an S3 server (moto) that both the operator and the workers
reach over HTTP. Standing in: the kubelet (no containers), and Gemini (summaries stay off here).

`videopipe` is the fixture most tests use: a fresh namespace and bucket, a credentials Secret, a
way to create VideoSources, start/kill the operator and look at folders, VideoJobs and Jobs.
Everything waits by polling with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client

from tests.cluster.harness import Cluster, wait_for
from tests.support import media
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
VIDEOPIPE = REPO / ".venv" / "bin" / "videopipe"
GROUP, VERSION = "videopipe.dev", "v1alpha1"
WORKER_IMAGE = "ghcr.io/videopipe/videopipe-worker:test"
Json = dict[str, Any]
T = TypeVar("T")

TEXTS = {
    "hello": "Hello and welcome. This is the first short test video.",
    "weather": "The weather today is sunny with a light breeze from the west.",
    "numbers": "One two three four five, counting slowly for the transcript.",
    "garden": "The garden needs water every morning during the summer.",
    "music": "Music practice starts at seven in the evening on Thursdays.",
    "train": "The next train to the city leaves from platform two.",
}
LONG_TEXT = " ".join(
    [
        "This recording is longer than the others, so that the operator sends it to a GPU node.",
        "It talks about nothing in particular for a while, sentence after sentence.",
        "The quick brown fox jumps over the lazy dog, and then it rests in the shade.",
    ]
)


# -- media (session) --


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-media")


@pytest.fixture(scope="session")
def talk_videos(media_dir: Path) -> dict[str, Path]:
    """Short (3-5 s) mp4 files of known speech, by name."""
    return {name: media.talk(text, media_dir / f"{name}.mp4") for name, text in TEXTS.items()}


@pytest.fixture(scope="session")
def long_video(media_dir: Path) -> Path:
    """About 15 s of speech: long enough to cross a small gpuMinDurationSeconds."""
    return media.talk(LONG_TEXT, media_dir / "long.mp4")


@pytest.fixture(scope="session")
def no_audio_video(media_dir: Path) -> Path:
    return media.video_without_audio(media_dir / "silent-film.mp4")


@pytest.fixture(scope="session")
def corrupt_video(media_dir: Path) -> Path:
    """Not a video at all, named like one (a failed upload, a renamed document)."""
    path = media_dir / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return path


# -- cluster --


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Path:
    """The CRDs from crds/, applied once and Established."""
    cluster.apply(CRDS)
    return CRDS


@dataclass
class Operator:
    """A running `videopipe operator` subprocess and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    health_port: int
    metrics_port: int
    events_port: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: what an OOM kill or a node loss does to the pod."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{port or self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:  # not listening yet
            return 0, ""


@dataclass
class Videopipe:
    """One test's world: namespace, bucket, Secret, VideoSources, operator processes."""

    cluster: Cluster
    namespace: str
    bucket: str
    s3: Any
    s3_endpoint: str
    workdir: Path
    operators: list[Operator] = field(default_factory=list)
    secret: str = "s3-credentials"

    # -- Kubernetes objects --

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.cluster.api)

    def create_secret(self, name: str | None = None, **data: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name or self.secret},
            "stringData": data
            or {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        }
        self.cluster.core.create_namespaced_secret(self.namespace, body)

    def source_spec(self, **spec: Any) -> Json:
        base: Json = {
            "bucket": self.bucket,
            "endpoint": self.s3_endpoint,
            "region": "us-east-1",
            "credentialsSecret": self.secret,
            "pollIntervalSeconds": 1,
            "maxConcurrentJobs": 2,
            "accelerator": {"policy": "cpu"},
            "worker": {"image": WORKER_IMAGE, "summary": False},
            "jobs": {"backoffLimit": 1, "ttlSecondsAfterFinished": 600},
        }
        base.update(spec)
        return base

    def create_source(self, name: str = "talks", **spec: Any) -> Json:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "VideoSource",
            "metadata": {"name": name},
            "spec": self.source_spec(**spec),
        }
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "videosources", body
        )

    def patch_source(self, name: str, spec: Json) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "videosources", name, {"spec": spec}
        )

    def source(self, name: str = "talks") -> Json:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "videosources", name
        )

    def videojobs(self) -> list[Json]:
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "videojobs"
        )["items"]

    def videojob_for(self, path: str) -> Json | None:
        found = [v for v in self.videojobs() if v["spec"]["path"] == path]
        return found[0] if found else None

    def jobs(self) -> list[client.V1Job]:
        return self.cluster.batch.list_namespaced_job(self.namespace).items

    def events(self, reason: str | None = None) -> list[client.CoreV1Event]:
        items = self.cluster.core.list_namespaced_event(self.namespace).items
        return [e for e in items if reason is None or e.reason == reason]

    # -- S3 --

    def upload(self, path: str, file: Path, metadata: dict[str, str] | None = None) -> str:
        extra = {"Metadata": metadata} if metadata else {}
        resp = self.s3.put_object(
            Bucket=self.bucket, Key=f"pending/{path}", Body=file.read_bytes(), **extra
        )
        return resp["ETag"].strip('"')

    def keys(self, folder: str) -> list[str]:
        """Keys under `folder/`, relative to it, sorted."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{folder}/"
        )
        return sorted(
            item["Key"][len(folder) + 1 :] for page in pages for item in page.get("Contents", [])
        )

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def move(self, src: str, dst: str) -> None:
        """What `aws s3 mv` does: a server-side copy (metadata kept), then a delete."""
        self.s3.copy_object(
            Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src}
        )
        self.s3.delete_object(Bucket=self.bucket, Key=src)

    def folders(self) -> dict[str, list[str]]:
        return {f: self.keys(f) for f in ("pending", "processing", "completed", "failed")}

    # -- operator --

    def start_operator(self, *args: str, wait_ready: bool = True, **env: str) -> Operator:
        """Start `videopipe operator` for this namespace; by default, until /readyz is 200."""
        log = self.workdir / f"operator-{len(self.operators)}.log"
        health, metrics_port, events_port = free_port(), free_port(), free_port()
        environ = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "VIDEOPIPE_WORKER_IMAGE": WORKER_IMAGE,
            "VIDEOPIPE_LOG_LEVEL": "INFO",
            **env,
        }
        command = [
            str(VIDEOPIPE),
            "operator",
            "--namespace",
            self.namespace,
            "--standalone",
            "--health-port",
            str(health),
            "--metrics-port",
            str(metrics_port),
            "--events-port",
            str(events_port),
            "--bind",
            "127.0.0.1",
            *args,
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=self.workdir
            )
        op = Operator(process, log, health, metrics_port, events_port)
        self.operators.append(op)
        if not wait_ready:
            return op
        wait_for(
            lambda: not op.alive() or op.get("/readyz")[0] == 200,
            timeout=60,
            message="operator ready",
        )
        assert op.alive(), f"operator exited at start:\n{op.text()}"
        return op

    def wait_polls(self, count: int = 2, source: str = "talks") -> None:
        """Until the source's loop has finished `count` more passes (its lastPollTime moved)."""
        seen: set[str] = set()

        def polled() -> bool:
            when = (self.source(source).get("status") or {}).get("lastPollTime")
            if when:
                seen.add(when)
            return len(seen) > count

        self.wait(polled, timeout=60, message=f"{count} more polls")

    def operator_logs(self) -> str:
        return "\n".join(f"--- {op.log.name} ---\n{op.text()}" for op in self.operators)

    def wait(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 120,
        message: str | Callable[[], str] = "condition",
    ) -> T:
        def describe() -> str:
            text = message() if callable(message) else message
            state = json.dumps(self.folders(), indent=1, ensure_ascii=False)
            phases = {
                v["metadata"]["name"]: (v.get("status") or {}).get("phase")
                for v in self.videojobs()
            }
            return f"{text}\nfolders: {state}\nvideojobs: {phases}"

        return wait_for(predicate, timeout, 0.25, describe)


@pytest.fixture
def videopipe(
    cluster: Cluster, crds: Path, s3, s3_endpoint: str, bucket: str, tmp_path: Path
) -> Iterator[Videopipe]:
    namespace = cluster.create_namespace(f"vp-{uuid.uuid4().hex[:8]}")
    vp = Videopipe(cluster, namespace, bucket, s3, s3_endpoint, tmp_path)
    vp.create_secret()
    try:
        yield vp
    finally:
        try:
            for op in vp.operators:
                op.kill()
            release(cluster, namespace)
        finally:
            cluster.delete_namespace(namespace)


def release(cluster: Cluster, namespace: str) -> None:
    """Once no operator runs: drop our finalizers so that the namespace can go, stop the Jobs."""
    for plural in ("videojobs", "videosources"):
        cluster.drop_finalizers(GROUP, VERSION, plural, namespace)
    cluster.delete_jobs(namespace)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    vp = getattr(item, "funcargs", {}).get("videopipe")
    if report.when == "call" and report.failed and isinstance(vp, Videopipe):
        lines = vp.operator_logs().splitlines()[-150:]
        report.sections.append(("operator log", "\n".join(lines)))


def seconds_since(start: float) -> float:
    return round(time.monotonic() - start, 1)
