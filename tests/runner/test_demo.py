"""`make demo` is a newcomer's first command: it must run the real loop and end well, offline.

Runs `demo/demo.py` exactly as the Makefile does (its own S3 server, the shipped sample talk,
`videopipe run --once`) and checks what it tells the reader and what it leaves in its output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.helpers import runner_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_real_loop(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "demo.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "videopipe run s3://demo --endpoint http://127.0.0.1:" in proc.stdout
    assert "1 completed, 1 failed" in proc.stdout
    assert "NotMedia" in proc.stdout
    assert "no locks left" in proc.stdout
    assert "Welcome to this short talk about video pipelines" in proc.stdout
    transcript = (out / "results" / "talk.mp4" / "transcript.txt").read_text()
    assert transcript.startswith("Welcome to this short talk")
    assert (out / "completed" / "talk.mp4").stat().st_size == (
        ROOT / "samples/talk.mp4"
    ).stat().st_size
    assert (out / "failed" / "notes" / "agenda.mp4.error.json").exists()
    assert not (out / "pending").exists() and not (out / "processing").exists()
