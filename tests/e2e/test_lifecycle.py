"""A video's whole trip on the real control plane: pending/ → VideoJob → Job → completed/."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import TEXTS, Videopipe

pytestmark = pytest.mark.cluster


def test_good_videos_complete_with_results(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    started = time.monotonic()
    videopipe.create_source(maxConcurrentJobs=2)
    op = videopipe.start_operator()
    names = ["hello", "weather", "numbers"]
    for name in names:
        videopipe.upload(f"{name}.mp4", talk_videos[name])

    # A move is a copy, then a delete: wait for the delete too, not only for the copy.
    videopipe.wait(
        lambda: (
            videopipe.keys("completed") == sorted(f"{n}.mp4" for n in names)
            and videopipe.keys("processing") == []
        ),
        timeout=240,
        message="all videos in completed/ and none left in processing/",
    )
    elapsed = time.monotonic() - started
    folders = videopipe.folders()
    assert folders["pending"] == [] and folders["failed"] == []
    for name in names:
        transcript = json.loads(videopipe.read(f"results/{name}.mp4/transcript.json"))
        assert transcript, name
        text = videopipe.read(f"results/{name}.mp4/transcript.txt").decode().lower()
        first_word = TEXTS[name].split()[0].lower().strip(",.")
        assert first_word in text, (name, text)
        assert f"{name}.mp4/manifest.json" in videopipe.keys("results")

    def all_succeeded():
        vjs = videopipe.videojobs()
        return len(vjs) == 3 and all(v["status"]["phase"] == "Succeeded" for v in vjs) and vjs

    vjs = videopipe.wait(all_succeeded, timeout=30, message="VideoJobs Succeeded")
    for vj in vjs:
        status = vj["status"]
        assert status["attempts"] == 1 and status["audioSeconds"] > 1
        assert status["language"] == "en" and status["realtimeFactor"] > 0
        assert status["results"]["srt"].endswith("/transcript.srt")
        assert status["duration"]
        conds = {c["type"]: c["status"] for c in status["conditions"]}
        assert conds == {"Started": "True", "Complete": "True", "Failed": "False"}
    assert len(videopipe.jobs()) == 3  # one Job per video, no retries
    assert videopipe.events("Succeeded")

    code, text = op.get("/metrics", port=op.metrics_port)
    assert code == 200
    source = f'source="{videopipe.namespace}/talks"'
    finished = (
        f'videopipe_videojobs_finished_total{{accelerator="cpu",outcome="succeeded",'
        f'reason="Succeeded",{source}}} 3.0'
    )
    assert finished in text
    assert f'videopipe_jobs_started_total{{accelerator="cpu",{source}}} 3.0' in text
    assert f"videopipe_backlog_objects{{{source}}} 0.0" in text
    audio = [
        line for line in text.splitlines() if line.startswith("videopipe_audio_seconds_total{")
    ]
    assert audio and float(audio[0].split()[-1]) > 5
    assert op.get("/healthz")[0] == 200
    print(f"\n3 videos completed in {elapsed:.1f} s")


def test_kubectl_shows_the_columns(videopipe: Videopipe, talk_videos: dict[str, Path]) -> None:
    videopipe.create_source()
    op = videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])
    videopipe.wait(lambda: videopipe.keys("completed") == ["hello.mp4"], timeout=120)
    videopipe.wait(
        lambda: (
            (videopipe.videojob_for("hello.mp4") or {}).get("status", {}).get("phase")
            == "Succeeded"
        )
    )
    out = videopipe.cluster.kubectl("get", "videojobs", "-n", videopipe.namespace).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "SOURCE", "VIDEO", "PHASE", "ACCEL", "DURATION", "AGE"]
    cells = row.split()
    assert cells[1:5] == ["talks", "hello.mp4", "Succeeded", "cpu"]
    assert cells[5].endswith("s")
    short = videopipe.cluster.kubectl("get", "vj", "-n", videopipe.namespace).stdout
    assert "hello.mp4" in short
    sources = videopipe.cluster.kubectl("get", "vsrc", "-n", videopipe.namespace).stdout
    assert sources.splitlines()[0].split()[:5] == ["NAME", "BUCKET", "READY", "BACKLOG", "RUNNING"]
    assert "True" in sources.splitlines()[1]
    started = time.monotonic()
    assert op.stop(timeout=30) == 0  # SIGTERM: a clean exit, as in a pod's termination
    print(f"\noperator stopped in {time.monotonic() - started:.1f} s after SIGTERM")


@pytest.mark.parametrize(
    "path",
    [
        "Überraschung café/Vortrag über Öl 2024.mp4",
        "日本語/ビデオ テスト.mp4",
        "deep/nested/folders/with spaces/and (parens) & more!.mp4",
    ],
)
def test_odd_keys_work(videopipe: Videopipe, talk_videos: dict[str, Path], path: str) -> None:
    videopipe.create_source()
    videopipe.start_operator()
    videopipe.upload(path, talk_videos["train"])
    videopipe.wait(lambda: videopipe.keys("completed") == [path], timeout=120)
    results = videopipe.keys("results")
    assert f"{path}/transcript.json" in results and f"{path}/manifest.json" in results
    text = videopipe.read(f"results/{path}/transcript.txt").decode().lower()
    assert "train" in text
    vj = videopipe.wait(lambda: videopipe.videojob_for(path))
    assert vj["metadata"]["annotations"]["videopipe.dev/key"] == f"pending/{path}"
