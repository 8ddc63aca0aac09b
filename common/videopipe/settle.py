"""How a claimed video settles, the same for the operator and `videopipe run`.

The last steps of a video's trip, and the questions asked on the way, live here once:

- `finish`: the final move to `completed/` or `failed/`, then removing our copy from the other
  final folder, then `failed/<path>.error.json` written (failure) or deleted (success). Every
  step is idempotent, so a crash anywhere in it is repaired by running it again.
- `results_of`: are the results in `results/<path>/` this upload's? `manifest.json` is written
  last, so it says the set is whole; its `input.etag` is the ETag of the object the worker read,
  which tells this upload's results from those an earlier video of the same path left behind.
- `failure_reason` and `failure_message`: why a worker run failed, the worker's own word first.
- `worker_fields`: what of the worker's report goes into `error.json`.
- `next_attempt` and `KEY_TOO_LONG_MESSAGE`: attempt counting, and what a key too long for
  the layout is told (the check itself is `Store.fits`).

What differs between the callers is who they are (`Claim.claimant`: the VideoJob's name, or
none for the runner, whose claim is a lock) and what they add to the report; and where the
folders are, behind the small `Folders` protocol: a bucket (`videopipe.store.Store`) or a local
folder (`videopipe.localstore.LocalStore`).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from videopipe.layout import Folder, Layout
from videopipe.reasons import Reason, safe_reason
from videopipe.report import ExitCode, WorkerReport
from videopipe.store import MoveResult, ObjectInfo, claimed_by, error_report, normalize_etag

KEY_TOO_LONG_MESSAGE = (
    "its folder-layout keys would pass S3's 1,024-byte limit; rename it with a shorter path"
)
MAX_MESSAGE = 1024


class Folders(Protocol):
    """What settling needs of where the folders are: a bucket, or a folder on this machine."""

    layout: Layout

    def head(self, key: str) -> ObjectInfo | None: ...

    def move(
        self,
        path: str,
        src: Folder,
        dst: Folder,
        *,
        identity: str,
        expect_etag: str | None = None,
        attempts: int | None = None,
        videojob: str | None = None,
    ) -> MoveResult: ...

    def delete(self, key: str) -> None: ...

    def delete_error(self, path: str) -> None: ...

    def write_error(self, path: str, report: Mapping[str, Any]) -> str: ...

    def results_manifest(self, path: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Claim:
    """One video as its claimant holds it: where it is, which upload, which attempt, whose."""

    path: str
    identity: str  # the ETag the video had when first discovered (`ObjectInfo.identity`)
    attempt: int
    claimant: str | None = None  # the VideoJob's name; None: no name is recorded (the runner)


def next_attempt(obj: ObjectInfo) -> int:
    """The attempt a new claim of `obj` makes: those recorded on our copies, plus one."""
    return obj.attempts + 1


def results_of(store: Folders, claim: Claim) -> dict[str, Any] | None:
    """`results/<path>/manifest.json` if those results were made from this upload, else None.

    Made from this upload: the manifest's `input.etag` is the ETag of our copy of the video (in
    `processing/`, or already in `completed/` after a crash between move and record). Results
    an earlier upload of the same path left behind name another object, and never count.
    """
    manifest = store.results_manifest(claim.path)
    made_from = normalize_etag(str(((manifest or {}).get("input") or {}).get("etag") or ""))
    if not made_from:
        return None
    for folder in (Folder.PROCESSING, Folder.COMPLETED):
        copy = _ours(store, claim, folder)
        if copy is not None and copy.etag == made_from:
            return manifest
    return None


def finish(
    store: Folders,
    claim: Claim,
    *,
    succeeded: bool,
    reason: str = "",
    message: str = "",
    exit_code: int | None = None,
    worker: Mapping[str, Any] | None = None,
    source: str | None = None,
    job: str | None = None,
    when: datetime | None = None,
    pending_etag: str | None = None,
) -> MoveResult:
    """Move the video from `processing/` to its final folder and tidy up around it.

    `pending_etag`: the video may still be in `pending/` as listed with this ETag (cancelled
    before it started); it is moved from there when `processing/` has no copy of ours.
    MISSING when neither holds it: then nothing else is touched.
    """
    dst = Folder.COMPLETED if succeeded else Folder.FAILED
    common: dict[str, Any] = {
        "identity": claim.identity,
        "attempts": claim.attempt,
        "videojob": claim.claimant,
    }
    moved = store.move(claim.path, Folder.PROCESSING, dst, **common)
    if moved is MoveResult.MISSING and pending_etag is not None:
        moved = store.move(claim.path, Folder.PENDING, dst, expect_etag=pending_etag, **common)
    if moved is MoveResult.MISSING:
        return moved
    drop_stale(store, claim, Folder.FAILED if succeeded else Folder.COMPLETED)
    if succeeded:
        store.delete_error(claim.path)
    else:
        store.write_error(
            claim.path,
            error_report(
                path=claim.path,
                reason=reason,
                message=message,
                attempt=claim.attempt,
                exit_code=exit_code,
                videojob=claim.claimant,
                job=job,
                source=source,
                worker=worker,
                when=when,
            ),
        )
    return moved


def drop_stale(store: Folders, claim: Claim, folder: Folder) -> bool:
    """A video ends in exactly one final folder: delete our copy from `folder` (an earlier
    opposite outcome, or a retry whose user copied instead of moving). Only a copy of this
    upload that no other claimant holds is ours. True if one was deleted."""
    if _ours(store, claim, folder) is None:
        return False
    store.delete(store.layout.key(folder, claim.path))
    return True


def _ours(store: Folders, claim: Claim, folder: Folder) -> ObjectInfo | None:
    copy = store.head(store.layout.key(folder, claim.path))
    if copy is None or copy.identity != normalize_etag(claim.identity):
        return None
    return copy if claimed_by(copy, claim.claimant) else None


# -- why a worker run failed --


def failure_reason(
    report: WorkerReport | None, exit_code: int | None, *, platform: str | None = None
) -> str:
    """Why a worker run failed, most specific first: the worker's own reason, then what the
    platform saw that the worker could not report (`platform`, e.g. OOMKilled), then what the
    exit code says (3 bad input, 2 configuration, a signal)."""
    if report is not None and report.reason:
        return safe_reason(report.reason)
    if platform:
        return platform
    if exit_code == ExitCode.BAD_INPUT:
        return Reason.BAD_INPUT
    if exit_code == ExitCode.CONFIG:
        return Reason.CONFIG_ERROR
    if exit_code is not None and exit_code < 0:
        return Reason.WORKER_KILLED
    return Reason.WORKER_FAILED


def failure_message(
    report: WorkerReport | None,
    exit_code: int | None,
    *,
    platform: str | None = None,
    log_tail: str | None = None,
) -> str:
    """What a person reads about the failure: the worker's message, else what happened to the
    process (`platform`: what the platform says, e.g. a Job's Failed condition), with the end of
    its output when there is one; at most MAX_MESSAGE characters."""
    if report is not None and report.message:
        return clip(report.message)
    if platform:
        what = platform
    elif exit_code is not None and exit_code < 0:
        what = f"The worker was killed by {_signal_name(-exit_code)} (out of memory?)"
    elif exit_code:
        what = f"The worker exited {exit_code} without a report"
    else:
        what = "The worker failed without a report"
    tail = (log_tail or "").strip()
    return clip(f"{what}: {tail}" if tail else what if platform else f"{what}.")


def clip(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def worker_fields(report: WorkerReport | None, **extra: Any) -> dict[str, Any] | None:
    """The `worker` part of `error.json`: the report's figures and whatever the caller adds
    (the runner: its id, runs, seconds, a log tail); None when there is nothing to say."""
    fields: dict[str, Any] = {}
    if report is not None:
        fields = {
            "reason": report.reason,
            "exitCode": report.exit_code,
            "audioSeconds": report.audio_seconds,
            "model": report.model,
            "device": report.device,
            "timings": report.timings or None,
        }
    fields.update(extra)
    kept = {k: v for k, v in fields.items() if v not in (None, "")}
    return kept or None


__all__ = [
    "KEY_TOO_LONG_MESSAGE",
    "Claim",
    "Folders",
    "clip",
    "drop_stale",
    "failure_message",
    "failure_reason",
    "finish",
    "next_attempt",
    "results_of",
    "worker_fields",
]
