"""`videopipe run --notify`: the same signed CloudEvents the operator sends, from one machine.

Real: the runner and its workers as child processes, moto, and a webhook receiver on 127.0.0.1
that checks each request as a receiver would (`standardwebhooks`, `tests/support/receiver.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.helpers import run_runner, upload
from tests.support.receiver import SECRET, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(answers=[(503, {}, b"busy")])  # the first try fails: the runner retries
    yield hook
    hook.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "webhook-secret"
    path.write_text(SECRET + "\n")
    return path


def test_every_outcome_reaches_the_receiver_signed_with_its_fields(
    s3, bucket: str, s3_endpoint: str, clips, corrupt, receiver, secret_file, tmp_path
) -> None:
    upload(s3, bucket, "pending/équipe/réunion.mp4", clips["alpha"])
    upload(s3, bucket, "pending/cut off.mp4", corrupt)
    run = run_runner(
        tmp_path,
        f"s3://{bucket}",
        "--endpoint",
        s3_endpoint,
        "--once",
        "--notify",
        f"{receiver.url}/hooks?team=media",
        "--notify-secret-file",
        str(secret_file),
        "--notify-events",
        "Started,Succeeded,Failed",
    )
    assert run.code == 1, run  # one video failed
    events = {e["id"]: e for e in receiver.events()}  # raises unless every signature checks out
    by_type: dict[str, list[dict]] = {}
    for event in events.values():
        by_type.setdefault(event["type"], []).append(event)
    assert sorted(by_type) == [
        "dev.videopipe.video.failed",
        "dev.videopipe.video.started",
        "dev.videopipe.video.succeeded",
    ]
    assert sorted(e["subject"] for e in by_type["dev.videopipe.video.started"]) == [
        "cut off.mp4",
        "équipe/réunion.mp4",
    ]
    [done] = by_type["dev.videopipe.video.succeeded"]
    assert done["source"] == f"s3://{bucket}/"
    assert done["subject"] == "équipe/réunion.mp4"
    data = done["data"]
    assert data["key"] == "completed/équipe/réunion.mp4" and data["bucket"] == bucket
    assert data["attempt"] == 1 and data["audioSeconds"] > 1 and data["language"] == "en"
    assert data["results"]["txt"] == f"s3://{bucket}/results/équipe/réunion.mp4/transcript.txt"
    [failed] = by_type["dev.videopipe.video.failed"]
    assert failed["data"]["key"] == "failed/cut off.mp4"
    assert failed["data"]["reason"] in ("Corrupt", "Truncated", "NotMedia"), failed
    assert failed["data"]["message"]
    # The first try was answered 503 and retried with the same id: one event, two requests.
    ids = [r.id for r in receiver.requests]
    assert len(ids) == len(set(ids)) + 1
    assert all(r.path == "/hooks?team=media" for r in receiver.requests)
    assert SECRET not in "".join(r.body.decode() for r in receiver.requests)


def test_no_secret_file_or_a_bad_secret_is_a_clear_configuration_error(
    bucket: str, s3_endpoint: str, receiver, tmp_path
) -> None:
    base = [f"s3://{bucket}", "--endpoint", s3_endpoint, "--once", "--notify", receiver.url]
    run = run_runner(tmp_path / "a", *base)
    assert run.code == 2, run
    assert "--notify needs --notify-secret-file" in run.stderr
    bad = tmp_path / "bad-secret"
    bad.write_text("hunter2")
    run = run_runner(tmp_path / "b", *base, "--notify-secret-file", str(bad))
    assert run.code == 2, run
    assert "whsec_" in run.stderr and "hunter2" not in run.stderr
    assert receiver.requests == []


def test_a_url_the_guard_refuses_is_said_before_any_video_is_touched(
    s3, bucket: str, s3_endpoint: str, clips, secret_file, tmp_path
) -> None:
    upload(s3, bucket, "pending/a.mp4", clips["alpha"])
    run = run_runner(
        tmp_path,
        f"s3://{bucket}",
        "--endpoint",
        s3_endpoint,
        "--once",
        "--notify",
        "http://169.254.169.254/latest/meta-data/",
        "--notify-secret-file",
        str(secret_file),
    )
    assert run.code == 2, run
    assert "169.254.169.254" in run.stderr and "denied" in run.stderr
    assert s3.head_object(Bucket=bucket, Key="pending/a.mp4")  # untouched
