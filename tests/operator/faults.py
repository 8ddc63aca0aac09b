"""Crash injection at the operator's I/O boundary: just before a chosen write to Kubernetes or S3.

Nothing of the operator's logic is replaced. `FaultyKube` *is* the operator's `Kube` (same
`ApiClient`, same verbs, talking to the real API server); each of its write verbs first asks
`Faults` whether the process dies now. S3 writes are intercepted one level lower, by a botocore
event hook (`before-parameter-build`: before the request is even built) on the mutating
operations of the real boto3 clients that `S3Clients` builds (its `make` parameter is the seam
for this). The crash is `Crash`, a `BaseException`, so that no
`except Exception` in the operator can swallow it: as after a SIGKILL, nothing that would have
followed in that process happens.

Each write is logged as a `Write` whose `kind` says where and what: the chain of product
functions that called it plus the verb (`starts.start > store.Store.move > CopyObject`), and the
folder, phase or Event reason it writes (`processing`, `Running`, `Started`). A crash point is
(kind, occurrence): "before the 2nd write of this kind", which names the same step in every
replay even when two videos take turns in a different order.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from videopipe.s3 import make_client
from videopipe_operator import metrics
from videopipe_operator.kube import Kube

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (REPO / "operator" / "videopipe_operator", REPO / "common" / "videopipe")

# Every public verb of `Kube`, as a read (never interrupted) or a write (a crash point). A test
# checks that this is all of them, so a new verb cannot slip past the crash tests.
KUBE_WRITES = (
    "patch_source_status",
    "create_videojob",
    "patch_videojob",
    "patch_videojob_status",
    "delete_videojob",
    "create_job",
    "delete_job",
    "post_event",
)
KUBE_READS = (
    "get_source",
    "list_sources",
    "list_videojobs",
    "get_videojob",
    "list_jobs",
    "list_pods",
    "secret_data",
    "get_pvc",
)
MUTATING_S3 = frozenset(
    {
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateMultipartUpload",
        "DeleteObject",
        "DeleteObjects",
        "PutObject",
        "UploadPart",
        "UploadPartCopy",
    }
)


class Crash(BaseException):
    """The operator process dies here (BaseException: no `except Exception` catches it)."""


@dataclass(frozen=True)
class Write:
    """One write as it was about to be sent."""

    site: str  # product functions on the stack, outermost first, then the verb
    what: str  # the folder, phase or Event reason written ("" when the verb says it all)
    target: str  # the object: a Kubernetes name or an S3 key

    @property
    def kind(self) -> str:
        return f"{self.site} ({self.what})" if self.what else self.site

    def __str__(self) -> str:
        return f"{self.kind} [{self.target}]"


Point = tuple[str, int]  # (kind, occurrence): before the occurrence-th write of that kind, from 0


@dataclass
class Faults:
    """Logs the writes of one world and raises `Crash` before the write at `crash_at`, once.

    `jobs_created` records the Jobs the API server answered 201 Created for: a second creation
    of the same Job (after it was deleted) would show here even though a list would not.
    """

    crash_at: Point | None = None
    log: list[Write] = field(default_factory=list)
    crashed: Write | None = None
    jobs_created: list[str] = field(default_factory=list)
    _seen: Counter[str] = field(default_factory=Counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before(self, verb: str, what: str, target: str) -> None:
        write = Write(call_site(verb), what, target)
        with self._lock:
            if self.crash_at == (write.kind, self._seen[write.kind]):
                self.crash_at = None
                self.crashed = write
                raise Crash(str(write))
            self._seen[write.kind] += 1
            self.log.append(write)

    def job_created(self, name: str) -> None:
        with self._lock:
            self.jobs_created.append(name)

    def points(self) -> list[Point]:
        """Every write logged so far as a crash point, in order."""
        seen: Counter[str] = Counter()
        out: list[Point] = []
        for write in self.log:
            out.append((write.kind, seen[write.kind]))
            seen[write.kind] += 1
        return out


def call_site(verb: str) -> str:
    """`a.f > b.g > verb`: the product functions on the stack, outermost first.

    `kube.py` is left out (it is the boundary itself), and so is `reconcile_source`, which only
    dispatches to its steps: the site names the step.
    """
    frames: list[str] = []
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if any(path.is_relative_to(root) for root in PRODUCT) and path.name != "kube.py":
            qualname = frame.f_code.co_qualname
            if qualname != "reconcile_source":
                frames.append(f"{path.stem}.{qualname}")
        frame = frame.f_back
    return " > ".join([*reversed(frames), verb])


def _kube_write(verb: str, arguments: dict[str, Any]) -> tuple[str, str]:
    """(what, target) of a Kube write, from its bound arguments."""
    body = arguments.get("body") or arguments.get("involved") or {}
    target = arguments.get("name") or (body.get("metadata") or {}).get("name") or ""
    what = ""
    if verb == "patch_videojob_status":
        what = str(arguments["patch"].get("phase") or "")
    elif verb == "post_event":
        what = str(arguments["reason"])
    return what, str(target)


def _guarded(verb: str) -> Callable[..., Any]:
    original = getattr(Kube, verb)
    signature = inspect.signature(original)

    @functools.wraps(original)
    def write(self: FaultyKube, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        self.faults.before(verb, *_kube_write(verb, arguments))
        result = original(self, *args, **kwargs)
        if verb == "create_job" and result:
            self.faults.job_created(arguments["body"]["metadata"]["name"])
        return result

    return write


class FaultyKube(Kube):
    """The operator's `Kube`, whose write verbs go through `faults` first."""

    def __init__(self, api: client.ApiClient, faults: Faults) -> None:
        super().__init__(api, on_api_error=metrics.count_kube_api_error)  # as __main__ wires it
        self.faults = faults


for _verb in KUBE_WRITES:
    setattr(FaultyKube, _verb, _guarded(_verb))


def s3_client_with_faults(faults: Faults) -> Callable[..., Any]:
    """A `make` for `S3Clients`: the real boto3 client, whose writes go through `faults` first."""

    def make(*args: Any, **kwargs: Any) -> Any:
        s3 = make_client(*args, **kwargs)

        def before(params: Any = None, model: Any = None, **_: Any) -> None:
            if model is None or model.name not in MUTATING_S3:
                return
            key = str((params or {}).get("Key") or "")
            faults.before(model.name, key.partition("/")[0], key)  # what: the folder

        s3.meta.events.register("before-parameter-build.s3", before)
        return s3

    return make


__all__ = [
    "KUBE_READS",
    "KUBE_WRITES",
    "MUTATING_S3",
    "Crash",
    "Faults",
    "FaultyKube",
    "Point",
    "Write",
    "call_site",
    "s3_client_with_faults",
]
