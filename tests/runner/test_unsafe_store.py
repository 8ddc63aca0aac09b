"""A store that ignores conditional writes: the runner says loudly that only one runner is safe,
and one runner still does its job.

The store is moto behind a proxy that drops `If-None-Match` and `If-Match` from writes
(`tests/support/s3proxy.py`), so the runner's start-up probe sees exactly what it would
see on such a store.
"""

from __future__ import annotations

from tests.runner.helpers import keys, run_runner, upload
from tests.support.s3proxy import S3Proxy


def test_single_runner_on_a_store_without_conditional_writes(
    s3, bucket, clips, unconditional: S3Proxy, tmp_path
) -> None:
    upload(s3, bucket, "pending/talk.mp4", clips["alpha"])

    run = run_runner(
        tmp_path, f"s3://{bucket}", "--endpoint", unconditional.url, "--once", "--no-summary"
    )

    assert run.code == 0, run
    assert run.report["conditionalWrites"] == "ignored"
    assert "does not honour conditional writes" in run.stderr
    assert "Run only ONE `videopipe run` per bucket" in run.stderr
    assert run.videos["talk.mp4"]["outcome"] == "completed"
    assert keys(s3, bucket, "completed/") == {"completed/talk.mp4"}
    assert keys(s3, bucket, "processing/") | keys(s3, bucket, ".videopipe/") == set()
