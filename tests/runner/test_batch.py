"""A mixed batch through `videopipe run --once`: every object ends in the right folder.

Good clips (one under a unicode name, one nested two folders deep), a cut-off upload, a video
with no sound track and a text file named `.mp4`, two workers at a time, under a root prefix.
"""

from __future__ import annotations

from pathlib import Path

import jiwer
from videopipe.layout import RESULT_FILES

from tests.runner.conftest import SENTENCES
from tests.runner.helpers import keys, read_json, run_runner, upload


def word_error_rate(expected: str, heard: str) -> float:
    """Whisper tiny.en mishears a word now and then; the clip's own sentence is still obvious."""
    return jiwer.wer(normalise(expected), normalise(heard))


def normalise(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def test_mixed_batch_ends_in_the_right_folders(
    s3, bucket: str, s3_endpoint: str, clips: dict[str, Path], no_audio, corrupt, tmp_path
) -> None:
    good = {
        "alpha.mp4": clips["alpha"],
        "équipe été/réunion ✓.mp4": clips["bravo"],
        "2024/q3/all-hands.mp4": clips["charlie"],
    }
    bad = {
        "cut off.mp4": corrupt,
        "screen/recording.mp4": no_audio,
    }
    for path, source in {**good, **bad}.items():
        upload(s3, bucket, f"media/pending/{path}", source)
    s3.put_object(Bucket=bucket, Key="media/pending/notes.mp4", Body=b"Meeting notes.\n" * 40)
    s3.put_object(Bucket=bucket, Key="media/pending/2024/", Body=b"")  # a folder marker

    run = run_runner(
        tmp_path,
        f"s3://{bucket}/media",
        "--endpoint",
        s3_endpoint,
        "--once",
        "--concurrency",
        "2",
        "--no-summary",
    )

    assert run.code == 1, run  # some videos failed
    failed = [*bad, "notes.mp4"]
    expected = (
        {f"media/completed/{p}" for p in good}
        | {f"media/failed/{p}" for p in failed}
        | {f"media/failed/{p}.error.json" for p in failed}
        | {f"media/results/{p}/{f}" for p in good for f in RESULT_FILES if f != "summary.json"}
        | {"media/pending/2024/"}  # not a video: left alone
    )
    assert keys(s3, bucket) == expected  # nothing in processing/, no lock or probe left over

    for path, name in zip(good, ("alpha", "bravo", "charlie"), strict=True):
        text = s3.get_object(Bucket=bucket, Key=f"media/results/{path}/transcript.txt")
        assert word_error_rate(SENTENCES[name], text["Body"].read().decode()) < 0.2, path
        meta = s3.head_object(Bucket=bucket, Key=f"media/completed/{path}")["Metadata"]
        assert meta["videopipe-attempts"] == "1"

    reasons = {p: read_json(s3, bucket, f"media/failed/{p}.error.json") for p in failed}
    assert reasons["screen/recording.mp4"]["reason"] == "NoAudioStream"
    assert reasons["notes.mp4"]["reason"] == "NotMedia"
    assert reasons["cut off.mp4"]["reason"] in {"Truncated", "NotMedia", "Corrupt"}
    for path, error in reasons.items():
        assert error["exitCode"] == 3 and error["attempt"] == 1, error
        assert error["path"] == path and error["message"]
        assert error["worker"]["runs"] == 1  # bad input is not retried

    assert {p: v["outcome"] for p, v in run.videos.items()} == {
        **dict.fromkeys(good, "completed"),
        **dict.fromkeys(failed, "failed"),
    }
    assert all(v["workerRuns"] == 1 for v in run.videos.values())
    assert run.videos["alpha.mp4"]["audioSeconds"] > 1
    # The summary table names every video and its outcome; no live table outside a terminal.
    for path in [*good, *failed]:
        assert path in run.stdout
    assert "3 completed, 3 failed" in run.stdout
    assert "running the worker" in run.stderr
