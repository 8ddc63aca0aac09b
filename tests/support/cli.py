"""Run `videopipe transcribe` as its users do: a subprocess, a real exit code.

The run's one-line exit report is read from the file that `VIDEOPIPE_TERMINATION_LOG`
names, exactly as the kubelet reads a pod's termination message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A user's real key in the environment must not leak into tests.
GEMINI_KEYS = {"GEMINI_API_KEY", "GOOGLE_API_KEY"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def run_transcribe(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Run:
    full_env = {k: v for k, v in os.environ.items() if k not in GEMINI_KEYS}
    full_env.update(env or {})
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "termination-log"
        full_env["VIDEOPIPE_TERMINATION_LOG"] = str(report_path)
        proc = subprocess.run(
            [sys.executable, "-m", "videopipe", "transcribe", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Run(proc.returncode, proc.stdout, proc.stderr, report)
