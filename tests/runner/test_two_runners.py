"""Two `videopipe run` processes on one bucket at once: each video is processed exactly once.

Counted from what each runner reports it did (`--report`: the videos it took and the worker
processes it started for each), not from anything mocked: the two reports must split the
videos between them with no overlap, and every video must have had exactly one worker run.
"""

from __future__ import annotations

from pathlib import Path

from tests.runner.helpers import RunnerProcess, keys, upload


def test_two_runners_share_a_bucket_without_doing_anything_twice(
    s3, bucket: str, s3_endpoint: str, clips: dict[str, Path], tmp_path: Path
) -> None:
    paths = [f"{name}-{n}.mp4" for n in (1, 2) for name in clips]  # 8 videos
    for path in paths:
        upload(s3, bucket, f"pending/{path}", clips[path.split("-")[0]])
    args = (f"s3://{bucket}", "--endpoint", s3_endpoint, "--once", "--no-summary")
    first = RunnerProcess(tmp_path / "first", *args)
    second = RunnerProcess(tmp_path / "second", *args)
    runs = [first.wait(), second.wait()]

    for run in runs:
        assert run.code == 0, run
        assert run.report["conditionalWrites"] == "honoured"
    taken = [set(run.videos) for run in runs]
    assert taken[0].isdisjoint(taken[1]), "a video was processed by both runners"
    assert taken[0] | taken[1] == set(paths)
    for run in runs:
        for path, video in run.videos.items():
            assert (video["outcome"], video["workerRuns"]) == ("completed", 1), path
    # Both did some of the work (they ran side by side, not one after the other).
    assert all(taken), [sorted(t) for t in taken]
    assert keys(s3, bucket, "completed/") == {f"completed/{p}" for p in paths}
    assert keys(s3, bucket, "pending/") | keys(s3, bucket, "processing/") == set()
    assert keys(s3, bucket, ".videopipe/") == set()
