"""An in-memory Kubernetes for reconcile-level tests, with fault injection at every write.

Why: the end-to-end tests kill the real operator at a few moments; here a crash is injected
before *each* write the operator makes (to Kubernetes or S3), one at a time, so every instant
between two effects is tried. `FakeKube` implements the verbs of `videopipe_operator.kube.Kube`
with the API server's semantics that the operator relies on (AlreadyExists, merge patches,
generation bumped by spec changes only, a separate status, finalizers holding deletion, label
selection). `World.run_jobs` plays the Job controller and kubelet: it runs each unfinished Job
the way the worker would (reads `processing/<path>`, writes the results, exits 0 or 3). S3 is
the real moto server.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from videopipe.report import WorkerReport
from videopipe.s3 import make_client
from videopipe_operator.constants import LABEL_SOURCE, LABEL_VIDEOJOB

Json = dict[str, Any]
MUTATING_S3 = (
    "CopyObject",
    "DeleteObject",
    "PutObject",
    "CreateMultipartUpload",
    "UploadPartCopy",
    "CompleteMultipartUpload",
)


class Crash(BaseException):
    """The operator process dies here (BaseException: no `except Exception` catches it)."""


@dataclass
class Faults:
    """Counts writes; raises Crash before the `crash_at`-th one (0-based), once."""

    crash_at: int | None = None
    writes: int = 0
    log: list[str] = field(default_factory=list)

    def tick(self, what: str) -> None:
        if self.crash_at is not None and self.writes == self.crash_at:
            self.crash_at = None
            raise Crash(what)
        self.writes += 1
        self.log.append(what)


def merge(target: Json, patch: Json) -> Json:
    """RFC 7386 JSON merge patch."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKube:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.sources: dict[tuple[str, str], Json] = {}
        self.videojobs: dict[tuple[str, str], Json] = {}
        self.jobs: dict[tuple[str, str], Json] = {}
        self.pods: dict[tuple[str, str], Json] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.events: list[tuple[str, str, str]] = []
        self.jobs_created: list[str] = []
        self._uid = itertools.count(1)

    # -- helpers --

    def _meta(self, body: Json) -> Json:
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta.setdefault("creationTimestamp", f"2025-01-01T00:00:{len(self.videojobs):02d}Z")
        meta.setdefault("generation", 1)
        return meta

    @staticmethod
    def _selected(items: Iterable[Json], namespace: str, source: str) -> list[Json]:
        return [
            copy.deepcopy(b)
            for b in items
            if b["metadata"]["namespace"] == namespace
            and (b["metadata"].get("labels") or {}).get(LABEL_SOURCE) == source
        ]

    # -- VideoSources --

    def add_source(self, body: Json) -> None:
        self._meta(body)
        self.sources[(body["metadata"]["namespace"], body["metadata"]["name"])] = body

    def get_source(self, namespace: str, name: str) -> Json | None:
        found = self.sources.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def patch_source_status(self, namespace: str, name: str, patch: Json) -> None:
        self.faults.tick("patch_source_status")
        body = self.sources[(namespace, name)]
        body["status"] = merge(body.get("status") or {}, patch)

    # -- VideoJobs --

    def list_videojobs(self, namespace: str, source: str) -> list[Json]:
        return self._selected(self.videojobs.values(), namespace, source)

    def get_videojob(self, namespace: str, name: str) -> Json | None:
        found = self.videojobs.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def create_videojob(self, body: Json) -> Json | None:
        self.faults.tick("create_videojob")
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if key in self.videojobs:
            return None
        body = copy.deepcopy(body)
        body["spec"].setdefault("attempt", 1)
        self._meta(body)
        self.videojobs[key] = body
        return copy.deepcopy(body)

    def patch_videojob(self, namespace: str, name: str, patch: Json) -> Json | None:
        self.faults.tick("patch_videojob")
        body = self.videojobs.get((namespace, name))
        if body is None:
            return None
        new = merge(body, patch)
        if new.get("spec") != body.get("spec"):
            new["metadata"]["generation"] = body["metadata"]["generation"] + 1
        self.videojobs[(namespace, name)] = new
        return copy.deepcopy(new)

    def patch_videojob_status(self, namespace: str, name: str, patch: Json) -> Json | None:
        self.faults.tick("patch_videojob_status")
        body = self.videojobs.get((namespace, name))
        if body is None:
            return None
        body["status"] = merge(body.get("status") or {}, patch)
        return copy.deepcopy(body)

    def delete_videojob(self, namespace: str, name: str) -> None:
        self.faults.tick("delete_videojob")
        body = self.videojobs.get((namespace, name))
        if body is None:
            return
        if body["metadata"].get("finalizers"):
            body["metadata"].setdefault("deletionTimestamp", "2025-01-01T01:00:00Z")
        else:
            self._remove_videojob(namespace, name)

    def release(self, namespace: str, name: str) -> None:
        """What kopf does after the delete handler succeeded: drop the finalizer."""
        body = self.videojobs.get((namespace, name))
        if body is not None:
            body["metadata"]["finalizers"] = []
            self._remove_videojob(namespace, name)

    def _remove_videojob(self, namespace: str, name: str) -> None:
        del self.videojobs[(namespace, name)]
        for key, job in list(self.jobs.items()):  # garbage collection of owned Jobs
            if (job["metadata"].get("labels") or {}).get(LABEL_VIDEOJOB) == name:
                del self.jobs[key]

    # -- Jobs and pods --

    def list_jobs(self, namespace: str, source: str) -> list[Json]:
        return self._selected(self.jobs.values(), namespace, source)

    def create_job(self, body: Json) -> bool:
        self.faults.tick("create_job")
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if key in self.jobs:
            return False
        body = copy.deepcopy(body)
        self._meta(body)
        body["status"] = {}
        self.jobs[key] = body
        self.jobs_created.append(key[1])
        return True

    def delete_job(self, namespace: str, name: str) -> None:
        self.faults.tick("delete_job")
        self.jobs.pop((namespace, name), None)

    def list_pods(self, namespace: str, source: str) -> list[Json]:
        return self._selected(self.pods.values(), namespace, source)

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.secrets.get((namespace, name))
        return dict(found) if found is not None else None

    def post_event(self, involved: Json, reason: str, message: str, *, warning: bool = False):
        self.faults.tick("post_event")
        self.events.append((involved["metadata"]["name"], reason, message))


def s3_client_with_faults(faults: Faults):
    """A `make_client` for `S3Clients` whose writes go through `faults` first."""

    def make(*args: Any, **kwargs: Any) -> Any:
        client = make_client(*args, **kwargs)

        def before(model: Any = None, **_: Any) -> None:
            if model is not None and model.name in MUTATING_S3:
                faults.tick(model.name)

        client.meta.events.register("before-call.s3", before)
        return client

    return make


def run_jobs(kube: FakeKube, s3: Any, bucket: str, bad: Iterable[str] = ()) -> int:
    """Play the Job controller and kubelet: run every unfinished Job to its end."""
    bad = set(bad)
    ran = 0
    for (namespace, name), job in list(kube.jobs.items()):
        if job["status"].get("conditions"):
            continue
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        source_key = args[1].split("/", 3)[3]
        output = args[3].split("/", 3)[3]
        path = source_key.split("processing/", 1)[1]
        # The worker reads its input: it must be there, or the claim was not done first.
        s3.head_object(Bucket=bucket, Key=source_key)
        if path in bad:
            report = WorkerReport("failed", 3, reason="NotMedia", message="not a video")
            condition = {"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}
        else:
            for file in ("transcript.json", "transcript.txt", "manifest.json"):
                s3.put_object(Bucket=bucket, Key=f"{output}{file}", Body=b"{}")
            report = WorkerReport(
                "succeeded", 0, audio_seconds=4.0, language="en", realtime_factor=2.0
            )
            condition = {"type": "Complete", "status": "True"}
        labels = job["spec"]["template"]["metadata"]["labels"]
        kube.pods[(namespace, f"{name}-pod")] = {
            "metadata": {
                "name": f"{name}-pod",
                "namespace": namespace,
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {**labels, "batch.kubernetes.io/job-name": name},
            },
            "spec": {"nodeName": "cpu-node"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "worker",
                        "state": {
                            "terminated": {
                                "exitCode": report.exit_code,
                                "reason": "Completed" if report.exit_code == 0 else "Error",
                                "message": report.to_line(),
                            }
                        },
                    }
                ]
            },
        }
        job["status"] = {"conditions": [condition]}
        ran += 1
    return ran
