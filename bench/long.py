"""Benchmark: long recordings in bounded memory, windowed against whole-file.

For each length (10 min, 1 h, 3 h, 10 h of espeak-ng speech by default), in one run:
`videopipe transcribe FILE --output DIR` as a fresh process, once in windows (the default,
`--window-seconds 900`) and once over the whole file (`--window-seconds 0`) where that still
fits in `--whole-max-minutes`. Printed per run: the process's peak RSS (from the kernel, via
wait4), wall time, real-time factor, and the word error rate against the spoken text, so the
windowed transcript's quality is compared with the whole-file one on the same audio.

Long talks are one ~10-minute espeak-ng talk (bench/worker.py makes and caches it) repeated
with ffmpeg's concat demuxer into an audio-only m4a: only the 10-minute talk is synthesised.

    .venv/bin/python bench/long.py [--minutes 10 60 180 600] [--whole-max-minutes 180]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support import media  # noqa: E402
from tests.worker.test_speech import word_error_rate  # noqa: E402
from worker import CACHE, make_talk  # noqa: E402

BASE_MINUTES = 10
MIB = 1024 * 1024


def long_talk(minutes: float) -> tuple[Path, str, float]:
    """An m4a of the base talk repeated to at least `minutes`, its text, and its seconds."""
    base, text = make_talk(BASE_MINUTES)
    repeats = max(1, math.ceil(minutes / BASE_MINUTES))
    target = CACHE / f"long-{repeats * BASE_MINUTES}min.m4a"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "list.txt"
            listing.write_text(f"file '{base}'\n" * repeats)
            partial = Path(tmp) / target.name
            concat = ["ffmpeg", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0"]
            subprocess.run(
                [*concat, "-i", str(listing), "-vn", "-c:a", "copy", str(partial)], check=True
            )
            partial.replace(target)
    seconds = media.duration(target)
    return target, " ".join([text] * repeats), seconds


def transcribe(path: Path, window_seconds: float) -> tuple[float, float, str]:
    """Peak RSS (MiB) and wall seconds of one fresh worker process, and its transcript."""
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "videopipe", "transcribe", str(path), "--output", out]
        command += ["--window-seconds", f"{window_seconds:g}", "--max-duration", "86400", "-q"]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
        text = json.loads((Path(out) / "transcript.json").read_text())["text"]
    return usage.ru_maxrss * 1024 / MIB, wall, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 180, 600])
    parser.add_argument(
        "--whole-max-minutes",
        type=float,
        default=180,
        help="run whole-file only up to this length (it needs ~770 MB per hour)",
    )
    args = parser.parse_args()
    rows = []
    for minutes in args.minutes:
        path, spoken, seconds = long_talk(minutes)
        modes = [("windowed (900 s)", 900.0)]
        if minutes <= args.whole_max_minutes:
            modes.append(("whole file", 0.0))
        for mode, window in modes:
            rss, wall, text = transcribe(path, window)
            wer = word_error_rate(spoken, text)
            rows.append((seconds, mode, rss, wall, wer))
            print(f"{seconds:.0f} s {mode}: {rss:.0f} MiB, {wall:.0f} s", file=sys.stderr)

    print("\ntiny.en int8 on CPU, `videopipe transcribe` on a local m4a, batched by length\n")
    print("| audio | mode | peak RSS | wall s | real-time factor | word error rate |")
    print("|---:|---|---:|---:|---:|---:|")
    for seconds, mode, rss, wall, wer in rows:
        print(
            f"| {seconds / 3600:.2f} h | {mode} | {rss:.0f} MiB | {wall:.0f} "
            f"| {seconds / wall:.1f}x | {wer:.2%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
