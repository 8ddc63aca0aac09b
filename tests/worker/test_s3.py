"""The worker against a real S3 server (moto on 127.0.0.1, boto3 over HTTP).

Input is read through a presigned URL in byte ranges; a store that ignores ranges
(some gateways do) must still work through the download fallback, which we prove
with a proxy in front of the S3 server that drops `Range` headers (`tests/support/s3proxy.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from videopipe.layout import RESULT_FILES

from tests.support import media
from tests.support.cli import run_transcribe
from tests.support.ports import free_port
from tests.support.s3proxy import NO_RANGES, FlakyReads, S3Proxy
from tests.worker.conftest import TALK_TEXT


def upload(s3, bucket: str, key: str, path: Path) -> str:
    s3.upload_file(str(path), bucket, key)
    return s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def test_s3_in_and_out_with_endpoint_from_environment(
    s3, bucket: str, s3_endpoint: str, talk_video: Path
) -> None:
    key = "pending/équipe A/quarterly review (final).mp4"
    etag = upload(s3, bucket, key, talk_video)
    prefix = "results/équipe A/quarterly review (final).mp4/"
    run = run_transcribe(
        f"s3://{bucket}/{key}",
        "--output",
        f"s3://{bucket}/{prefix}",
        env={"AWS_ENDPOINT_URL": s3_endpoint},
    )
    assert run.code == 0, run
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert {o["Key"].removeprefix(prefix) for o in listed} == set(RESULT_FILES) - {"summary.json"}
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["input"]["etag"] == etag
    assert manifest["input"]["uri"] == f"s3://{bucket}/{key}"
    vtt = s3.get_object(Bucket=bucket, Key=prefix + "transcript.vtt")
    assert vtt["ContentType"] == "text/vtt"
    assert vtt["Body"].read().startswith(b"WEBVTT")
    assert run.report["results"] == f"s3://{bucket}/{prefix}"
    assert "X-Amz-Signature" not in run.stderr + json.dumps(run.report)


@pytest.fixture
def no_range_store(s3_endpoint: str) -> Iterator[S3Proxy]:
    proxy = S3Proxy(s3_endpoint, NO_RANGES)
    yield proxy
    proxy.close()


def test_store_without_range_requests_falls_back_to_download(
    s3, bucket: str, talk_video: Path, no_range_store: S3Proxy, tmp_path: Path
) -> None:
    upload(s3, bucket, "pending/talk.mp4", talk_video)
    run = run_transcribe(
        f"s3://{bucket}/pending/talk.mp4",
        "--output",
        str(tmp_path),
        "--endpoint-url",
        no_range_store.url,
    )
    assert run.code == 0, run
    assert "refuses range requests; downloading talk.mp4" in run.stderr
    assert no_range_store.full_gets >= 2  # the range probe, then the download
    assert json.loads((tmp_path / "transcript.json").read_text())["text"]


@pytest.fixture
def busy_store(s3_endpoint: str) -> Iterator[S3Proxy]:
    proxy = S3Proxy(s3_endpoint, {}, FlakyReads())
    yield proxy
    proxy.close()


def test_throttled_and_dropped_reads_do_not_fail_a_good_video(
    s3, bucket: str, media_dir: Path, busy_store: S3Proxy, tmp_path: Path
) -> None:
    """ffmpeg and the range probe meet `503 SlowDown` and bodies cut short, and carry on.

    The index sits at the end of this mp4, so ffmpeg seeks: several range requests, each a
    chance for a fault; the first two of ffmpeg's (and of the probe's) are faults for sure.
    """
    video = media.talk(TALK_TEXT, media_dir / "index at the end.mp4", faststart=False)
    upload(s3, bucket, "pending/index at the end.mp4", video)
    run = run_transcribe(
        f"s3://{bucket}/pending/index at the end.mp4",
        "--output",
        str(tmp_path),
        "--endpoint-url",
        busy_store.url,
    )
    assert run.code == 0, run
    faults = busy_store.faults.injected
    assert faults["Lavf", "503"] >= 1 and faults["Lavf", "drop"] >= 1, faults
    assert faults["Python-urllib", "503"] >= 1, faults
    assert "downloading" not in run.stderr  # the probe's retry still found range support
    text = json.loads((tmp_path / "transcript.json").read_text())["text"].lower()
    assert "quarterly review" in text and "thank you all for coming" in text  # start to end


def test_unreachable_store_is_retryable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    run = run_transcribe(
        "s3://videos/pending/talk.mp4", "--output", str(tmp_path), "--endpoint-url", dead
    )
    assert run.code == 1, run
    assert run.report["reason"] == "S3Unreachable"
    assert "cannot reach the S3 endpoint" in run.stderr


def test_missing_object_and_bucket_are_configuration_errors(
    bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    missing = run_transcribe(
        f"s3://{bucket}/pending/gone.mp4", "--output", str(tmp_path), "--endpoint-url", s3_endpoint
    )
    assert missing.code == 2, missing
    assert missing.report["reason"] == "InputNotFound"
    no_bucket = run_transcribe(
        "s3://no-such-bucket-here/a.mp4", "--output", str(tmp_path), "--endpoint-url", s3_endpoint
    )
    assert no_bucket.code == 2, no_bucket
    assert "does not exist" in no_bucket.stderr or "no such object" in no_bucket.stderr
