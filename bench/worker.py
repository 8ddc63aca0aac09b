"""Benchmark: `videopipe transcribe` end to end from S3 against bare faster-whisper.

On the same ~10-minute talk and the same settings, in one run:
  bare  faster-whisper called directly, the fastest ways we found: the model already
        loaded, `transcribe()` over an already-decoded array (`decode_audio`), batched
        and sequential, with the model made in the transcribing thread and in another
        one (the worker loads its model in a thread while ffmpeg starts). The fastest
        median of these is the baseline.
  e2e   `videopipe transcribe s3://... --output s3://...` as a fresh process against a
        real S3 server (moto): start-up, probe, presigned-URL extraction, model load,
        transcription, and writing every result file back to S3.
Each path's word error rate against the spoken text is printed beside its speed: the
worker must lose no word against bare faster-whisper. Runs alternate so that machine
noise hits every path alike; the median of each is reported. Target: e2e real-time
factor >= 0.95 x the baseline.

    .venv/bin/python bench/worker.py [--runs 5] [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from videopipe.s3 import make_client  # noqa: E402
from videopipe_worker.models import resolve_model  # noqa: E402
from videopipe_worker.transcribe import (  # noqa: E402
    TranscribeSettings,
    available_cpus,
    choose_batch_size,
)

from tests.conftest import free_port  # noqa: E402
from tests.support import media  # noqa: E402
from tests.worker.test_speech import word_error_rate  # noqa: E402

E2E = "videopipe transcribe, S3 to S3 (fresh process)"
CACHE = Path(os.environ.get("VIDEOPIPE_CACHE", Path.home() / ".cache" / "videopipe")) / "bench"
SENTENCES = [
    "The storage team moved every recording to the new bucket last week.",
    "Our customers asked for shorter meetings and clearer summaries.",
    "The release plan has three phases, and the first one starts in March.",
    "We measured the latency of the upload path on every region.",
    "Please send your questions to the mailing list before Friday.",
    "The budget for the next quarter covers two new engineers.",
    "Support tickets dropped by a third after the last update.",
    "The design review found two problems in the retry logic.",
    "We will run the migration on a weekend to avoid downtime.",
    "Every video now gets a transcript within a few minutes.",
    "The dashboard shows the backlog, the failures and the throughput.",
    "Security asked us to rotate the access keys every ninety days.",
    "The mobile app will support offline playback in the summer.",
    "Training the new model took four days on eight graphics cards.",
    "The conference talk was recorded in three languages.",
    "We agreed to publish the notes of every planning meeting.",
]


def make_talk(minutes: float) -> tuple[Path, str]:
    """A long talk from shuffled sentences and its text, cached across runs (espeak-ng is slow)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"talk-{minutes:g}min.mp4"
    script = target.with_suffix(".txt")
    if target.exists() and script.exists():
        return target, script.read_text()
    rng = random.Random(7)
    words_needed = int(minutes * media.SPEECH_RATE_WPM)
    text, count = [], 0
    while count < words_needed:
        sentence = rng.choice(SENTENCES)
        text.append(sentence)
        count += len(sentence.split())
    media.talk(" ".join(text), target)
    script.write_text(" ".join(text))
    return target, script.read_text()


def load_model(settings: TranscribeSettings, *, in_thread: bool) -> Any:
    """faster-whisper's own model, as the worker would choose it, made here or in a thread."""
    from faster_whisper import WhisperModel

    def make() -> Any:
        return WhisperModel(
            resolve_model(settings.model),
            device="cpu",
            compute_type="int8",
            cpu_threads=available_cpus(),
        )

    if not in_thread:
        return make()
    made: list[Any] = []
    loader = threading.Thread(target=lambda: made.append(make()))
    loader.start()
    loader.join()
    return made[0]


def bare(model: Any, audio: Any, batch: int, settings: TranscribeSettings) -> tuple[float, str]:
    """Seconds of `transcribe()` over a decoded array, and the text."""
    from faster_whisper import BatchedInferencePipeline

    runner = BatchedInferencePipeline(model) if batch > 1 else model
    options = {"batch_size": batch} if batch > 1 else {}
    started = time.perf_counter()
    segments, _ = runner.transcribe(
        audio,
        beam_size=settings.beam_size,
        vad_filter=True,
        condition_on_previous_text=False,
        **options,
    )
    text = " ".join(s.text for s in segments)
    return time.perf_counter() - started, text


def end_to_end(s3, endpoint: str, bucket: str, key: str, n: int) -> tuple[float, dict, str]:
    """Wall seconds of one fresh `videopipe transcribe`, its stage timings, and its text."""
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    env.pop("GEMINI_API_KEY", None)
    env.pop("GOOGLE_API_KEY", None)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "videopipe",
            "transcribe",
            f"s3://{bucket}/{key}",
            "--output",
            f"s3://{bucket}/results/run-{n}/",
            "-q",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    manifest = s3.get_object(Bucket=bucket, Key=f"results/run-{n}/manifest.json")  # finished
    transcript = s3.get_object(Bucket=bucket, Key=f"results/run-{n}/transcript.json")
    text = json.loads(transcript["Body"].read())["text"]
    return elapsed, json.loads(manifest["Body"].read())["timings"], text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    talk, spoken = make_talk(args.minutes)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings = TranscribeSettings()
    from faster_whisper import decode_audio

    audio = decode_audio(str(talk))
    audio_seconds = audio.size / 16_000
    batch = choose_batch_size("cpu", None, audio_seconds)
    models = {
        True: load_model(settings, in_thread=True),
        False: load_model(settings, in_thread=False),
    }
    bare_paths = {
        f"bare, batched ({batch}), model made in another thread": (models[True], batch),
        f"bare, batched ({batch}), model made in this thread": (models[False], batch),
        "bare, sequential, model made in another thread": (models[True], 1),
    }
    times: dict[str, list[float]] = {name: [] for name in [*bare_paths, E2E]}
    texts: dict[str, str] = {}
    stages = []
    try:
        s3 = make_client(endpoint)
        s3.create_bucket(Bucket="bench")
        s3.upload_file(str(talk), "bench", "pending/talk.mp4")
        for n in range(args.runs):
            for name, (model, size) in bare_paths.items():
                seconds, texts[name] = bare(model, audio, size, settings)
                times[name].append(seconds)
            elapsed, timings, texts[E2E] = end_to_end(s3, endpoint, "bench", "pending/talk.mp4", n)
            times[E2E].append(elapsed)
            stages.append(timings)
            print(
                f"run {n + 1}/{args.runs}: "
                + ", ".join(f"{t[-1]:.1f} s" for t in times.values())
                + f" (e2e transcribe {timings['transcribe']:.1f} s)",
                file=sys.stderr,
            )
    finally:
        server.stop()

    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline = min(medians[name] for name in bare_paths)
    print(
        f"\ntiny.en int8 on CPU, {available_cpus()} threads, beam 5, VAD on, "
        f"{audio_seconds:.0f} s of espeak-ng speech; median of {args.runs} runs; "
        "baseline: the fastest bare path\n"
    )
    print("| path | wall s | real-time factor | vs baseline | word error rate |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in medians.items():
        wer = word_error_rate(spoken, texts[name])
        print(
            f"| {name} | {seconds:.1f} | {audio_seconds / seconds:.1f}x "
            f"| {baseline / seconds:.2f} | {wer:.2%} |"
        )
    print("\nwhere the end-to-end run spends its time (median s; start-up is the first three,")
    print("which overlap, and what comes before them):")
    for stage in ("load_model", "probe", "extract", "startup", "transcribe", "write"):
        print(f"  {stage:<11} {statistics.median(t.get(stage, 0.0) for t in stages):6.2f}")
    target = 0.95
    verdict = "meets" if baseline / medians[E2E] >= target else "misses"
    print(f"\nend to end {verdict} the target of >= {target} x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
