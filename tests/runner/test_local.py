"""`videopipe run FOLDER`: the same trip over a local folder, claims by OS lock and rename.

Real: the runner and every worker as child processes, files on this machine's file system,
espeak-ng speech. Two runners over one folder must split the videos with no overlap (counted
from their `--report`s, as in test_two_runners.py); a killed runner's video is resumed by the
next one at once (the OS released its lock), and only the final move is redone when the
orphaned worker's results are whole and were made from that very file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

from tests.runner.helpers import RunnerProcess, run_runner, wait_for


def files(folder: Path) -> set[str]:
    """Files below `folder`, relative to it (empty if it does not exist)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def drop(root: Path, path: str, source: Path) -> None:
    """What a user should do: copy in under a hidden name, then rename into pending/."""
    target = root / "pending" / path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, partial)
    os.rename(partial, target)


def test_two_runners_share_a_folder_without_doing_anything_twice(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "videos"
    paths = [f"{name}.mp4" for name in clips] + ["talks/alpha-again.mp4"]
    for path in paths:
        drop(root, path, clips[path.split("/")[-1].split(".")[0].split("-")[0]])
    not_media = tmp_path / "notes.txt"
    not_media.write_text("An agenda, named like a video.\n" * 20)
    drop(root, "notes.mp4", not_media)
    args = (str(root), "--once", "--no-summary")
    runs = [RunnerProcess(tmp_path / "first", *args), RunnerProcess(tmp_path / "second", *args)]
    first, second = (run.wait() for run in runs)

    taken = [set(first.videos), set(second.videos)]
    assert taken[0].isdisjoint(taken[1]), "a video was processed by both runners"
    assert taken[0] | taken[1] == {*paths, "notes.mp4"}
    assert all(taken), [sorted(t) for t in taken]  # side by side, not one after the other
    for run in (first, second):
        assert run.code == (1 if "notes.mp4" in run.videos else 0), run
        for path, video in run.videos.items():
            expected = ("failed", "NotMedia") if path == "notes.mp4" else ("completed", "")
            assert (video["outcome"], video["reason"], video["workerRuns"]) == (*expected, 1)
    assert files(root / "completed") == set(paths)
    assert files(root / "failed") == {"notes.mp4", "notes.mp4.error.json"}
    error = json.loads((root / "failed/notes.mp4.error.json").read_text())
    assert (error["reason"], error["attempt"], error["source"]) == ("NotMedia", 1, str(root))
    for path in paths:
        manifest = json.loads((root / "results" / path / "manifest.json").read_text())
        assert manifest["input"]["etag"]  # the file's identity, which survives the moves
        assert (root / "results" / path / "transcript.txt").read_text().strip()
    assert files(root / "pending") | files(root / "processing") == set()
    assert files(root / ".videopipe/locks") == set()


def test_watch_picks_up_a_new_file_and_stops_cleanly(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "videos"
    (root / "pending").mkdir(parents=True)
    runner = RunnerProcess(tmp_path / "run", str(root), "--watch", "--interval", "0.5")
    wait_for("the runner to make the folders", lambda: (root / "results").is_dir())
    drop(root, "late.mp4", clips["bravo"])
    wait_for("late.mp4 to complete", lambda: (root / "completed/late.mp4").exists(), 180)
    runner.signal(signal.SIGTERM)
    run = runner.wait()
    assert run.code == 0, run
    assert run.videos["late.mp4"]["outcome"] == "completed"
    assert "friday" in (root / "results/late.mp4/transcript.txt").read_text().lower()


def test_a_killed_runners_video_is_resumed_at_once(clips: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "videos"
    drop(root, "talk.mp4", clips["delta"])
    args = (str(root), "--no-summary")
    victim = RunnerProcess(tmp_path / "victim", *args, "--watch")
    wait_for("its worker to start", lambda: "running the worker" in victim.stderr)
    victim.signal(signal.SIGKILL)
    victim.wait()
    assert files(root / "processing") == {"talk.mp4"}
    # The orphaned worker finishes on its own; no lease to wait out: the OS freed the lock.
    manifest = root / "results/talk.mp4/manifest.json"
    wait_for("the orphan's results", manifest.exists, timeout=180)

    run = run_runner(tmp_path / "successor", *args, "--once")

    assert run.code == 0, run
    video = run.videos["talk.mp4"]
    assert (video["outcome"], video["reason"], video["resumed"]) == ("completed", "Resumed", True)
    assert video["workerRuns"] == 0  # the results were whole and this file's
    assert files(root / "completed") == {"talk.mp4"}
    assert files(root / "processing") | files(root / ".videopipe/locks") == set()
