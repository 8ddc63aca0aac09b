"""The operator may die before any write it makes; every video still ends once, in one folder.

A clean run of a small scenario (two good videos, one that is not media) counts the writes the
operator makes to Kubernetes and S3. Then the scenario is replayed once per write, with the
process "killed" just before that write (`world.Crash`) and a fresh operator (new Context, no
memory) continuing from whatever state was left. After each replay: every video is in exactly
one final folder, nothing is left in pending/ or processing/, each video had exactly one Job,
and every VideoJob records attempt 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from videopipe.layout import Layout
from videopipe.store import Store
from videopipe_operator import cancel
from videopipe_operator.config import Config
from videopipe_operator.context import Context
from videopipe_operator.reconcile import reconcile_source
from videopipe_operator.sources import S3Clients

from tests.operator.world import Crash, FakeKube, Faults, run_jobs, s3_client_with_faults

NS, SOURCE = "media", "talks"
GOOD = ["a.mp4", "b b/ü.mp4"]
BAD = "bad.mp4"


def world(s3: Any, s3_endpoint: str, bucket: str, faults: Faults, **spec: Any) -> FakeKube:
    kube = FakeKube(faults)
    kube.secrets[(NS, "creds")] = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    kube.add_source(
        {
            "metadata": {"name": SOURCE, "namespace": NS},
            "spec": {
                "bucket": bucket,
                "endpoint": s3_endpoint,
                "credentialsSecret": "creds",
                "maxConcurrentJobs": 2,
                "queueWindow": 1,
                **spec,
            },
        }
    )
    for path in [*GOOD, BAD]:
        s3.put_object(Bucket=bucket, Key=f"pending/{path}", Body=path.encode() * 100)
    return kube


def drive(
    kube: FakeKube,
    faults: Faults,
    s3: Any,
    bucket: str,
    max_passes: int = 40,
    bad: frozenset[str] = frozenset({BAD}),
) -> int:
    """Run passes (a new operator after each crash) until every video is settled."""
    config = Config()
    clients = S3Clients(
        config, make=s3_client_with_faults(faults)
    )  # boto3 clients are slow to make

    def fresh() -> Context:
        return Context(kube=kube, config=config, s3=clients)  # type: ignore[arg-type]

    for n in range(max_passes):
        try:
            reconcile_source(fresh(), NS, SOURCE)
            for key, body in list(kube.videojobs.items()):
                if body["metadata"].get("deletionTimestamp"):
                    cancel.cancel(fresh(), body)
                    kube.release(*key)
        except Crash:
            continue
        run_jobs(kube, s3, bucket, bad=bad)
        if settled(kube, s3, bucket):
            return n + 1
    raise AssertionError(f"not settled after {max_passes} passes: {folders(s3, bucket)}")


def folders(s3: Any, bucket: str) -> dict[str, list[str]]:
    store = Store(s3, bucket, Layout(""))
    out = {}
    for folder in ("pending", "processing", "completed", "failed"):
        resp = s3.list_objects_v2(Bucket=bucket, Prefix=f"{folder}/")
        out[folder] = sorted(o["Key"][len(folder) + 1 :] for o in resp.get("Contents", []))
    del store
    return out


def settled(kube: FakeKube, s3: Any, bucket: str) -> bool:
    f = folders(s3, bucket)
    vjs = list(kube.videojobs.values())
    return (
        not f["pending"]
        and not f["processing"]
        and len(vjs) == 3
        and all(
            (v.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            and v["status"].get("observedGeneration") == v["metadata"]["generation"]
            for v in vjs
        )
    )


def check(kube: FakeKube, s3: Any, bucket: str, label: str) -> None:
    f = folders(s3, bucket)
    assert f["completed"] == sorted(GOOD), label
    assert f["failed"] == [BAD, f"{BAD}.error.json"], label
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"failed/{BAD}.error.json")["Body"].read())
    assert report["attempt"] == 1 and report["reason"] == "NotMedia", label
    for path in GOOD:
        s3.head_object(Bucket=bucket, Key=f"results/{path}/manifest.json")
    names = sorted(v["metadata"]["name"] for v in kube.videojobs.values())
    assert sorted(kube.jobs_created) == [f"{n}-1" for n in names], label  # one Job per video
    for v in kube.videojobs.values():
        assert v["status"]["attempts"] == 1, label
        expected = "Failed" if v["spec"]["path"] == BAD else "Succeeded"
        assert v["status"]["phase"] == expected, label


@pytest.fixture
def new_bucket(s3) -> Callable[[], str]:
    count = iter(range(10_000))

    def make() -> str:
        import uuid

        name = f"crash-{uuid.uuid4().hex[:10]}-{next(count)}"
        s3.create_bucket(Bucket=name)
        return name

    return make


def test_clean_run(s3, s3_endpoint: str, bucket: str) -> None:
    faults = Faults()
    kube = world(s3, s3_endpoint, bucket, faults)
    passes = drive(kube, faults, s3, bucket)
    check(kube, s3, bucket, "clean run")
    assert passes <= 6
    assert faults.writes > 20


@pytest.mark.slow
def test_a_crash_before_any_write_loses_and_duplicates_nothing(
    s3, s3_endpoint: str, new_bucket: Callable[[], str]
) -> None:
    clean = Faults()
    bucket = new_bucket()
    kube = world(s3, s3_endpoint, bucket, clean)
    drive(kube, clean, s3, bucket)
    writes = list(clean.log)
    for crash_at, what in enumerate(writes):
        faults = Faults(crash_at=crash_at)
        bucket = new_bucket()
        kube = world(s3, s3_endpoint, bucket, faults)
        label = f"crash before write #{crash_at} ({what})"
        try:
            drive(kube, faults, s3, bucket)
        except Exception as e:
            raise AssertionError(f"{label}: {e!r}\nwrites: {faults.log}") from e
        check(kube, s3, bucket, label)
    print(f"\n{len(writes)} crash points replayed: {sorted(set(writes))}")


def retry_world(s3: Any, s3_endpoint: str, bucket: str, faults: Faults) -> FakeKube:
    """The scenario settled, then the user moves the bad video back (and it is fine now)."""
    kube = world(s3, s3_endpoint, bucket, Faults())
    drive(kube, kube.faults, s3, bucket)
    kube.faults = faults
    s3.copy_object(
        Bucket=bucket, Key=f"pending/{BAD}", CopySource={"Bucket": bucket, "Key": f"failed/{BAD}"}
    )
    s3.delete_object(Bucket=bucket, Key=f"failed/{BAD}")
    return kube


def check_retry(kube: FakeKube, s3: Any, bucket: str, label: str) -> None:
    f = folders(s3, bucket)
    assert f["completed"] == sorted([*GOOD, BAD]) and f["failed"] == [], label
    (vj,) = [v for v in kube.videojobs.values() if v["spec"]["path"] == BAD]
    assert vj["status"]["phase"] == "Succeeded" and vj["status"]["attempts"] == 2, label
    name = vj["metadata"]["name"]
    jobs = sorted(j for j in kube.jobs_created if j.startswith(name))
    assert jobs == [f"{name}-1", f"{name}-2"], label  # one Job per attempt


@pytest.mark.slow
def test_a_crash_during_a_retry_counts_one_attempt(
    s3, s3_endpoint: str, new_bucket: Callable[[], str]
) -> None:
    clean = Faults()
    bucket = new_bucket()
    kube = retry_world(s3, s3_endpoint, bucket, clean)
    drive(kube, clean, s3, bucket, bad=frozenset())
    check_retry(kube, s3, bucket, "clean retry")
    for crash_at, what in enumerate(list(clean.log)):
        faults = Faults(crash_at=crash_at)
        bucket = new_bucket()
        kube = retry_world(s3, s3_endpoint, bucket, faults)
        label = f"retry, crash before write #{crash_at} ({what})"
        try:
            drive(kube, faults, s3, bucket, bad=frozenset())
        except Exception as e:
            raise AssertionError(f"{label}: {e!r}\nwrites: {faults.log}") from e
        check_retry(kube, s3, bucket, label)
    print(f"\n{len(clean.log)} crash points replayed during a retry")


def cancel_world(s3: Any, s3_endpoint: str, bucket: str, faults: Faults) -> FakeKube:
    """One video whose Job is running, and the user deletes its VideoJob."""
    kube = FakeKube(Faults())
    kube.secrets[(NS, "creds")] = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    kube.add_source(
        {
            "metadata": {"name": SOURCE, "namespace": NS},
            "spec": {"bucket": bucket, "endpoint": s3_endpoint, "credentialsSecret": "creds"},
        }
    )
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"video")
    config = Config()
    reconcile_source(Context(kube=kube, config=config), NS, SOURCE)  # type: ignore[arg-type]
    assert len(kube.jobs) == 1
    (name,) = [n for (_, n) in kube.videojobs]
    kube.delete_videojob(NS, name)
    kube.faults = faults
    return kube


@pytest.mark.slow
def test_a_crash_while_cancelling_still_cancels_once(
    s3, s3_endpoint: str, new_bucket: Callable[[], str]
) -> None:
    def run(faults: Faults, bucket: str) -> FakeKube:
        kube = cancel_world(s3, s3_endpoint, bucket, faults)
        config = Config()
        clients = S3Clients(config, make=s3_client_with_faults(faults))
        for _ in range(10):
            ctx = Context(kube=kube, config=config, s3=clients)  # type: ignore[arg-type]
            try:
                reconcile_source(ctx, NS, SOURCE)
                for key, body in list(kube.videojobs.items()):
                    if body["metadata"].get("deletionTimestamp"):
                        cancel.cancel(ctx, body)  # kopf retries the handler until it succeeds
                        kube.release(*key)
            except Crash:
                continue
            if not kube.videojobs:
                return kube
        raise AssertionError(f"not cancelled: {folders(s3, bucket)}")

    clean = Faults()
    run(clean, new_bucket())
    for crash_at, what in enumerate(list(clean.log)):
        bucket = new_bucket()
        kube = run(Faults(crash_at=crash_at), bucket)
        label = f"cancel, crash before write #{crash_at} ({what})"
        f = folders(s3, bucket)
        assert f["failed"] == ["a.mp4", "a.mp4.error.json"], label
        assert f["pending"] == f["processing"] == f["completed"] == [], label
        report = json.loads(
            s3.get_object(Bucket=bucket, Key="failed/a.mp4.error.json")["Body"].read()
        )
        assert report["reason"] == "Cancelled", label
        assert kube.jobs == {} and kube.jobs_created == [kube.jobs_created[0]], label
    print(f"\n{len(clean.log)} crash points replayed during a cancellation")
