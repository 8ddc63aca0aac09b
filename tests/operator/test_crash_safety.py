"""The operator may die before any write it makes; every video still ends once, in one folder.

Real: the control plane (the API server's own AlreadyExists, merge patches, generation,
status subresource, finalizers, label selection, owner references and garbage collection), the
Job controller and scheduler, the kubelet stand-in running `videopipe transcribe` on each Job's
video, the moto S3 server, and the operator's code, built as `__main__` builds it and called
in-process (`replay.py`). Injected: a crash just before one chosen write, at the I/O boundary
(`faults.py`): a `BaseException` raised by the operator's `Kube` write verbs or by a botocore
hook on its S3 writes. A fresh operator (new `Context`, clients and memory) then carries on from
whatever state was left, pass after pass, until the world settles. Played by the test: kopf (it
calls the delete handler, then removes the finalizer) and the user (uploads, moves, deletes).

Three scenarios, each first run without a crash to log its writes:

- main (29 writes): a good video (in a sub-folder, with a space and a non-ASCII name) and a file
  that is not media, `maxConcurrentJobs: 1`, `queueWindow: 1`: both get VideoJobs, one starts
  and the other waits Queued; the first succeeds, which frees the slot for the second, which
  fails; each is settled in its final folder;
- retry (14 writes): a configuration error (a model that does not exist) failed both videos;
  the user fixes the VideoSource and moves the good one back from `failed/`: its VideoJob is
  re-armed and the second attempt succeeds, while the other video stays failed;
- cancel (8 writes): the user deletes the VideoJob of a running video.

Which crashes are replayed. Each write is logged with its kind: the code path that makes it
(`reconcile._finish > outcomes.finish_if_done > outcomes.settle > ... > CopyObject`) and what it
writes (the S3 folder, the VideoJob phase, the Event reason). A crash is replayed before the
first write of every kind: 19 in the main flow, 13 in the retry, 8 in the cancellation (40
replays, four worlds at a time: about two and a half minutes on two cores). So every write site
on these paths is interrupted at least once, for each folder, phase and reason it writes. The 11
writes not replayed are later writes of a kind already replayed, running the same code from a
state another replay also goes through: in the main flow the second video's VideoJob creation,
Event, claim and start (as for the first), its move out of `processing/` (as for the first),
and the source status written again at the end of later passes; in the retry, that status
again. `VIDEOPIPE_CRASH_POINTS=all` replays every one of the 51 writes (about six minutes).

After each replay: every video is in exactly one final folder and nothing is left in `pending/`
or `processing/`; the success has its results and the failure a report saying why and which
attempt; each attempt had exactly one Job (the API server's 201 answers are counted), whose pod
ran once and whose owner is its VideoJob; each VideoJob records its phase, attempts and Job,
with `observedGeneration` equal to its generation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from videopipe_operator.kube import Kube

from tests.cluster.harness import Cluster, wait_for
from tests.e2e.conftest import GROUP, VERSION, WORKER_IMAGE
from tests.operator.conftest import Clips
from tests.operator.faults import KUBE_READS, KUBE_WRITES, Faults, Point
from tests.operator.replay import SOURCE, Replay, replay_each, worlds

Json = dict[str, Any]
GOOD = "b b/ü.mp4"  # a sub-folder, a space and a non-ASCII name on every path
BAD = "wrong.mp4"  # its key and its VideoJob's name both sort after GOOD's: a stable order
MAIN_SPEC: Json = {"maxConcurrentJobs": 1, "queueWindow": 1}
BROKEN_MODEL: Json = {"image": WORKER_IMAGE, "summary": False, "model": "no-such-model"}


def crash_points(clean: Faults) -> list[Point]:
    """The first write of every kind, or every write with VIDEOPIPE_CRASH_POINTS=all."""
    points = clean.points()
    if os.environ.get("VIDEOPIPE_CRASH_POINTS") == "all":
        return points
    return [point for point in points if point[1] == 0]


def replay_crashes(
    scenario: str,
    clean: Faults,
    world: Callable[[], Replay],
    settled: Callable[[Replay], bool],
    check: Callable[[Replay, str], None],
) -> None:
    """For each crash point of `clean`: a new world, crashed there, driven till settled, checked."""
    points = crash_points(clean)

    def replay_one(point: Point) -> None:
        kind, occurrence = point
        why = f"{scenario}, crash before write {occurrence + 1} of {kind}"
        replay = world()
        replay.faults.crash_at = point
        try:
            replay.drive(lambda: settled(replay))
            assert replay.faults.crashed is not None, "the crash point was never reached"
            check(replay, why)
        except AssertionError as e:
            writes = "\n    ".join(map(str, replay.faults.log))
            raise AssertionError(f"{why}: {e}\n  writes after the crash too:\n    {writes}") from e
        replay.release()

    seconds = replay_each(points, replay_one)
    kinds = "\n  ".join(kind for kind, _ in points)
    print(
        f"\n{scenario}: {len(points)} crash points replayed (of {len(clean.log)} writes) "
        f"in {seconds:.0f} s:\n  {kinds}"
    )


def by_path(replay: Replay) -> dict[str, Json]:
    return {v["spec"]["path"]: v for v in replay.videojobs()}


def finished(vj: Json) -> bool:
    status = vj.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed") and status.get(
        "observedGeneration"
    ) == vj["metadata"].get("generation")


def check_jobs(replay: Replay, expected: list[str], why: str) -> None:
    """`expected` Jobs, each created once (201), owned by its VideoJob, its pod run once."""
    assert sorted(replay.faults.jobs_created) == sorted(expected), why
    jobs = replay.vp.jobs()
    assert sorted(j.metadata.name for j in jobs) == sorted(expected), why
    uids = {v["metadata"]["uid"]: v["metadata"]["name"] for v in replay.videojobs()}
    for job in jobs:  # no Job without its VideoJob
        (owner,) = job.metadata.owner_references
        assert (owner.kind, owner.controller) == ("VideoJob", True), why
        assert owner.uid in uids and job.metadata.name.startswith(f"{uids[owner.uid]}-"), why
    assert replay.pods_per_job() == dict.fromkeys(expected, 1), why


def test_every_kube_verb_is_a_read_or_an_interrupted_write() -> None:
    verbs = {name for name, value in vars(Kube).items() if callable(value)}
    assert {v for v in verbs if not v.startswith("_")} == set(KUBE_READS) | set(KUBE_WRITES)


# -- main flow --


def main_world(new: Callable[..., Replay], clips: Clips) -> Replay:
    replay = new(**MAIN_SPEC)
    replay.vp.upload(GOOD, clips.morning)
    replay.vp.upload(BAD, clips.not_media)
    return replay


def main_settled(replay: Replay) -> bool:
    folders = replay.folders()
    vjs = replay.videojobs()
    return (
        not folders["pending"]
        and not folders["processing"]
        and len(vjs) == 2
        and all(finished(v) for v in vjs)
    )


def check(replay: Replay, why: str) -> None:
    folders = replay.folders()
    assert folders["pending"] == folders["processing"] == [], why
    assert folders["completed"] == [GOOD], why
    assert folders["failed"] == [BAD, f"{BAD}.error.json"], why
    report = json.loads(replay.vp.read(f"failed/{BAD}.error.json"))
    assert report["attempt"] == 1 and report["reason"] == "NotMedia", why
    assert json.loads(replay.vp.read(f"results/{GOOD}/manifest.json")), why
    vjs = by_path(replay)
    assert sorted(vjs) == [GOOD, BAD], why
    check_jobs(replay, [f"{v['metadata']['name']}-1" for v in vjs.values()], why)
    for path, vj in vjs.items():
        status = vj["status"]
        assert status["attempts"] == 1 and vj["spec"]["attempt"] == 1, why
        assert status["jobName"] == f"{vj['metadata']['name']}-1", why
        assert status["phase"] == ("Failed" if path == BAD else "Succeeded"), why
        assert status["observedGeneration"] == vj["metadata"]["generation"], why
    good = vjs[GOOD]["status"]
    assert good["language"] == "en" and good["results"]["transcript"].endswith(".json"), why


@pytest.fixture(scope="module")
def clean_main(
    cluster: Cluster,
    crds: Path,
    s3: Any,
    s3_endpoint: str,
    clips: Clips,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replay]:
    """The main scenario without a crash: its writes are the crash points."""
    with worlds(cluster, s3, s3_endpoint, tmp_path_factory.mktemp("clean")) as new:
        replay = main_world(new, clips)
        replay.drive(lambda: main_settled(replay))
        yield replay


@pytest.mark.cluster
def test_clean_run(clean_main: Replay) -> None:
    check(clean_main, "clean run")
    assert clean_main.passes <= 6 and clean_main.restarts == 0
    assert len(clean_main.faults.log) > 20
    kinds = {write.kind for write in clean_main.faults.log}
    assert any("starts.queue > patch_videojob_status (Queued)" in kind for kind in kinds)
    assert any("Store.write_error" in kind for kind in kinds)  # the failure was settled


@pytest.mark.cluster
@pytest.mark.slow
def test_a_crash_before_any_write_loses_and_duplicates_nothing(
    clean_main: Replay, new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay_crashes(
        "main", clean_main.faults, lambda: main_world(new_world, clips), main_settled, check
    )


# -- retry --


def retry_world(new: Callable[..., Replay], clips: Clips) -> Replay:
    """Both videos failed on a configuration error; the source is fixed, one video moved back."""
    replay = new(maxConcurrentJobs=2, worker=BROKEN_MODEL)
    replay.vp.upload(GOOD, clips.morning)
    replay.vp.upload(BAD, clips.not_media)
    replay.drive(
        lambda: len(replay.videojobs()) == 2 and all(finished(v) for v in replay.videojobs())
    )
    report = json.loads(replay.vp.read(f"failed/{GOOD}.error.json"))
    assert report["exitCode"] == 2 and report["attempt"] == 1
    replay.faults = Faults(jobs_created=list(replay.faults.jobs_created))  # writes from here on
    replay.vp.patch_source(SOURCE, {"worker": {"model": None}})
    replay.vp.move(f"failed/{GOOD}", f"pending/{GOOD}")
    return replay


def retry_settled(replay: Replay) -> bool:
    vj = by_path(replay)[GOOD]
    return finished(vj) and vj["status"].get("attempts") == 2 and not replay.folders()["pending"]


def check_retry(replay: Replay, why: str) -> None:
    folders = replay.folders()
    assert folders["pending"] == folders["processing"] == [], why
    assert folders["completed"] == [GOOD], why
    assert folders["failed"] == [BAD, f"{BAD}.error.json"], why  # GOOD's stale report is gone
    assert json.loads(replay.vp.read(f"results/{GOOD}/manifest.json")), why
    vjs = by_path(replay)
    retried, bystander = vjs[GOOD], vjs[BAD]
    assert retried["status"]["phase"] == "Succeeded", why
    assert retried["status"]["attempts"] == 2 and retried["spec"]["attempt"] == 2, why
    assert retried["status"]["jobName"] == f"{retried['metadata']['name']}-2", why
    assert "model" not in retried["spec"]["worker"], why  # settings refreshed from the source
    assert bystander["status"]["phase"] == "Failed", why
    assert bystander["status"]["attempts"] == 1, why
    name, other = retried["metadata"]["name"], bystander["metadata"]["name"]
    check_jobs(replay, [f"{name}-1", f"{name}-2", f"{other}-1"], why)  # one Job per attempt


@pytest.mark.cluster
@pytest.mark.slow
def test_a_crash_during_a_retry_counts_one_attempt(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    clean = retry_world(new_world, clips)
    clean.drive(lambda: retry_settled(clean))
    check_retry(clean, "clean retry")
    replay_crashes(
        "retry", clean.faults, lambda: retry_world(new_world, clips), retry_settled, check_retry
    )


# -- cancellation --


def cancel_world(new: Callable[..., Replay], clips: Clips) -> Replay:
    """One video whose Job is running, and the user deletes its VideoJob."""
    replay = new()
    replay.vp.upload("a.mp4", clips.hello)
    replay.one_pass(replay.operator())
    replay.close()
    assert len(replay.vp.jobs()) == 1
    (vj,) = replay.videojobs()
    replay.vp.custom.delete_namespaced_custom_object(
        GROUP, VERSION, replay.namespace, "videojobs", vj["metadata"]["name"]
    )
    replay.faults = Faults(jobs_created=list(replay.faults.jobs_created))  # writes from here on
    return replay


def cancelled(replay: Replay) -> bool:
    return replay.videojobs() == []


def check_cancel(replay: Replay, why: str) -> None:
    folders = replay.folders()
    assert folders["failed"] == ["a.mp4", "a.mp4.error.json"], why
    assert folders["pending"] == folders["processing"] == folders["completed"] == [], why
    report = json.loads(replay.vp.read("failed/a.mp4.error.json"))
    assert report["reason"] == "Cancelled" and report["attempt"] == 1, why
    assert len(replay.faults.jobs_created) == 1, why
    core = replay.vp.cluster.core
    wait_for(lambda: replay.vp.jobs() == [], 60, message=f"{why}: Job deleted")
    wait_for(
        lambda: core.list_namespaced_pod(replay.namespace).items == [],
        60,
        message=f"{why}: worker pod gone",
    )


@pytest.mark.cluster
@pytest.mark.slow
def test_a_crash_while_cancelling_still_cancels_once(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    clean = cancel_world(new_world, clips)
    clean.drive(lambda: cancelled(clean))
    check_cancel(clean, "clean cancellation")
    replay_crashes(
        "cancel", clean.faults, lambda: cancel_world(new_world, clips), cancelled, check_cancel
    )
