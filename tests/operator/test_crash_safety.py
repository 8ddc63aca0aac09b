"""The operator may die before any write it makes; every video still ends once, in one folder.

Real: the control plane (API server semantics: AlreadyExists, merge patches, generation,
finalizers, label selection, ownership and garbage collection), the Job controller and
scheduler, the kubelet stand-in running `videopipe transcribe` on each Job's video, the moto S3
server, and the operator's own code, built as `__main__` builds it (`replay.py`). Injected: a
crash before one chosen write, at the boundary (`faults.py`): a `BaseException` raised by the
operator's `Kube` write verbs or by a botocore hook on S3 writes, after which a
fresh operator (new `Context`, nothing remembered) carries on from whatever state was left.
Played by the test: kopf (the delete handler, then the finalizer's removal) and the user.

Three scenarios, each first run cleanly to log every write:

- main: two good videos (one in a sub-folder with a non-ASCII name) and a file that is not media,
  `maxConcurrentJobs: 2`, `queueWindow: 1`: so a VideoJob waits Queued, two Jobs run at once, a
  slot frees and the third starts; successes and a failure are settled (41 writes);
- retry: a configuration error (a model that does not exist) failed both videos; the user fixes
  the VideoSource and moves one video back from `failed/`: its VideoJob is re-armed and its
  second attempt succeeds (14 writes);
- cancel: the user deletes the VideoJob of a running video (8 writes, with kopf's finalizer).

Which crashes are replayed: each write is logged with its *kind*, the code path that made it
(`reconcile._finish > outcomes.settle > ... > CopyObject`) and what it writes (the S3 folder,
the VideoJob phase, the Event reason). By default a crash is replayed before the first write of
every kind of each scenario (main 19, retry 14, cancel 8: 41 replays). That is every write site
the operator has on these paths, each also for every folder, phase or reason it writes there;
a later write of the same kind runs the same code again for another video or in a later pass,
from a state that the replays of earlier kinds already passed through. With
`VIDEOPIPE_CRASH_POINTS=all` every single write is replayed (63 replays, several minutes).

After each replay: every video is in exactly one final folder and nothing is left in `pending/`
or `processing/`; results exist for the successes and the failure report says why and which
attempt; each attempt had exactly one Job (the API server's 201 answers are counted), whose pod
ran once and whose owner is its VideoJob; each VideoJob records the right phase and attempt,
its Job, and an `observedGeneration` equal to its generation.
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
GOOD = ["a.mp4", "b b/ü.mp4"]
BAD = "wrong.mp4"  # its VideoJob's name sorts after the others, like its key: a stable order
MAIN_SPEC: Json = {"maxConcurrentJobs": 2, "queueWindow": 1}
BROKEN_MODEL: Json = {"image": WORKER_IMAGE, "summary": False, "model": "no-such-model"}


def crash_points(clean: Faults) -> list[Point]:
    """The first write of every kind, or every write with VIDEOPIPE_CRASH_POINTS=all."""
    points = clean.points()
    if os.environ.get("VIDEOPIPE_CRASH_POINTS") == "all":
        return points
    return [point for point in points if point[1] == 0]


def label(point: Point) -> str:
    kind, occurrence = point
    return f"crash before write {occurrence + 1} of {kind}"


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
    for job in jobs:
        (owner,) = job.metadata.owner_references
        assert (owner.kind, owner.controller) == ("VideoJob", True), why
        assert job.metadata.name.startswith(f"{uids[owner.uid]}-"), why  # no Job without its VJ
    assert replay.pods_per_job() == dict.fromkeys(expected, 1), why


# -- main flow --


def main_world(new: Callable[..., Replay], clips: Clips) -> Replay:
    replay = new(**MAIN_SPEC)
    for path, clip in zip(GOOD, (clips.hello, clips.morning), strict=True):
        replay.vp.upload(path, clip)
    replay.vp.upload(BAD, clips.not_media)
    return replay


def main_settled(replay: Replay) -> bool:
    folders = replay.folders()
    vjs = replay.videojobs()
    return (
        not folders["pending"]
        and not folders["processing"]
        and len(vjs) == 3
        and all(finished(v) for v in vjs)
    )


def check(replay: Replay, why: str) -> None:
    folders = replay.folders()
    assert folders["pending"] == folders["processing"] == [], why
    assert folders["completed"] == sorted(GOOD), why
    assert folders["failed"] == [BAD, f"{BAD}.error.json"], why
    report = json.loads(replay.vp.read(f"failed/{BAD}.error.json"))
    assert report["attempt"] == 1 and report["reason"] == "NotMedia", why
    for path in GOOD:
        manifest = json.loads(replay.vp.read(f"results/{path}/manifest.json"))
        assert manifest, why
    vjs = by_path(replay)
    assert sorted(vjs) == sorted([*GOOD, BAD]), why
    names = [v["metadata"]["name"] for v in vjs.values()]
    check_jobs(replay, [f"{name}-1" for name in names], why)  # one Job per video
    for path, vj in vjs.items():
        status = vj["status"]
        assert status["attempts"] == 1 and vj["spec"]["attempt"] == 1, why
        assert status["jobName"] == f"{vj['metadata']['name']}-1", why
        assert status["phase"] == ("Failed" if path == BAD else "Succeeded"), why
        assert status["observedGeneration"] == vj["metadata"]["generation"], why
        if path != BAD:
            assert status["results"]["transcript"].endswith("/transcript.json"), why
            assert status["language"] == "en", why


@pytest.fixture(scope="module")
def clean_main(
    cluster: Cluster,
    crds: Path,
    s3: Any,
    s3_endpoint: str,
    clips: Clips,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replay]:
    """The main scenario without a crash: the writes it makes are the crash points."""
    with worlds(cluster, s3, s3_endpoint, tmp_path_factory.mktemp("clean")) as new:
        replay = main_world(new, clips)
        replay.drive(lambda: main_settled(replay))
        yield replay


def test_every_kube_verb_is_a_read_or_an_interrupted_write() -> None:
    verbs = {name for name in vars(Kube) if not name.startswith("_") and callable(vars(Kube)[name])}
    assert verbs == set(KUBE_READS) | set(KUBE_WRITES)


@pytest.mark.cluster
def test_clean_run(clean_main: Replay) -> None:
    check(clean_main, "clean run")
    assert clean_main.passes <= 6 and clean_main.restarts == 0
    assert len(clean_main.faults.log) > 20
    kinds = {write.kind for write in clean_main.faults.log}
    assert any("Store.write_error" in kind for kind in kinds)  # the failure was settled
    assert any("starts.queue > patch_videojob_status (Queued)" in kind for kind in kinds)


@pytest.mark.cluster
@pytest.mark.slow
def test_a_crash_before_any_write_loses_and_duplicates_nothing(
    clean_main: Replay, new_world: Callable[..., Replay], clips: Clips
) -> None:
    points = crash_points(clean_main.faults)

    def replay_one(point: Point) -> None:
        replay = main_world(new_world, clips)
        replay.faults.crash_at = point
        why = label(point)
        replay.drive(lambda: main_settled(replay))
        assert replay.faults.crashed is not None, f"{why}: not reached"
        check(replay, why)
        replay.release()

    seconds = replay_each(points, replay_one)
    print(
        f"\n{len(points)} crash points replayed (of {len(clean_main.faults.log)} writes, "
        f"{len({w.kind for w in clean_main.faults.log})} kinds) in {seconds:.0f} s"
    )


# -- retry --

RETRIED = GOOD[1]


def retry_world(new: Callable[..., Replay], clips: Clips) -> Replay:
    """Both videos failed on a configuration error; the source is fixed, one video moved back."""
    replay = new(maxConcurrentJobs=2, worker=BROKEN_MODEL)
    replay.vp.upload(RETRIED, clips.morning)
    replay.vp.upload(BAD, clips.not_media)
    replay.drive(
        lambda: len(replay.videojobs()) == 2 and all(finished(v) for v in replay.videojobs())
    )
    report = json.loads(replay.vp.read(f"failed/{RETRIED}.error.json"))
    assert report["exitCode"] == 2 and report["attempt"] == 1
    replay.faults = Faults(jobs_created=list(replay.faults.jobs_created))
    replay.vp.patch_source(SOURCE, {"worker": {"model": None}})
    replay.vp.move(f"failed/{RETRIED}", f"pending/{RETRIED}")
    return replay


def retry_settled(replay: Replay) -> bool:
    vj = by_path(replay)[RETRIED]
    return finished(vj) and vj["status"].get("attempts") == 2 and not replay.folders()["pending"]


def check_retry(replay: Replay, why: str) -> None:
    folders = replay.folders()
    assert folders["pending"] == folders["processing"] == [], why
    assert folders["completed"] == [RETRIED], why
    assert folders["failed"] == [BAD, f"{BAD}.error.json"], why  # the stale report is gone
    replay.vp.read(f"results/{RETRIED}/manifest.json")
    vjs = by_path(replay)
    retried, bystander = vjs[RETRIED], vjs[BAD]
    assert retried["status"]["phase"] == "Succeeded", why
    assert retried["status"]["attempts"] == 2 and retried["spec"]["attempt"] == 2, why
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
    points = crash_points(clean.faults)

    def replay_one(point: Point) -> None:
        replay = retry_world(new_world, clips)
        replay.faults.crash_at = point
        why = label(point)
        replay.drive(lambda: retry_settled(replay))
        assert replay.faults.crashed is not None, f"{why}: not reached"
        check_retry(replay, why)
        replay.release()

    seconds = replay_each(points, replay_one)
    print(
        f"\n{len(points)} crash points replayed during a retry (of {len(clean.faults.log)} "
        f"writes) in {seconds:.0f} s"
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
    replay.faults = Faults(jobs_created=list(replay.faults.jobs_created))
    return replay


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
    clean.drive(lambda: clean.videojobs() == [])
    check_cancel(clean, "clean cancellation")
    points = crash_points(clean.faults)

    def replay_one(point: Point) -> None:
        replay = cancel_world(new_world, clips)
        replay.faults.crash_at = point
        why = label(point)
        replay.drive(lambda: replay.videojobs() == [], max_passes=10)
        assert replay.faults.crashed is not None, f"{why}: not reached"
        check_cancel(replay, why)
        replay.release()

    seconds = replay_each(points, replay_one)
    print(
        f"\n{len(points)} crash points replayed during a cancellation (of "
        f"{len(clean.faults.log)} writes) in {seconds:.0f} s"
    )
