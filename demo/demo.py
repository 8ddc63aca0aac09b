"""`make demo`: the real processing loop, end to end, on this machine and offline.

It starts an S3 server inside this process (moto, the one the tests use), uploads the sample
talk and a text file that only pretends to be a video to `pending/`, and runs the same
`videopipe run --once` a user would run against AWS S3 or MinIO: claims, moves, the worker
(ffmpeg, Whisper tiny.en), `completed/`, `failed/` with its error report. Then it shows what
landed where, why the impostor failed, and the transcript, and copies the bucket into
`demo-output/`. Nothing here is a shortcut: only the S3 server is local. Summaries are off
because Gemini is a remote service and the demo must run offline.

Usage: python demo/demo.py [--output demo-output]   (needs the [dev] extra, for moto)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "talk.mp4"
BUCKET = "demo"
IMPOSTOR = "notes/agenda.mp4"
IMPOSTOR_TEXT = b"Agenda\n1. Welcome\n2. Roadmap\n3. Questions\n"
# Local-only credentials: a developer's real AWS keys must never be sent to the demo server.
DEMO_ENV = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_REGION": "us-east-1"}
FOLDERS = ("pending", "processing", "completed", "failed", "results")

console = Console(highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    args = parser.parse_args(argv)
    os.environ.update(DEMO_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    started = time.monotonic()

    console.rule("[bold]videopipe demo: the real loop on a local S3 server")
    with s3_server() as endpoint:
        from videopipe.s3 import make_client

        s3 = make_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        step(1, f"Started an S3 server at {endpoint} and created the bucket s3://{BUCKET}.")
        s3.upload_file(str(SAMPLE), BUCKET, "pending/talk.mp4")
        s3.put_object(Bucket=BUCKET, Key=f"pending/{IMPOSTOR}", Body=IMPOSTOR_TEXT)
        step(2, "Uploaded two files to pending/, as a user would:")
        console.print(
            f"     pending/talk.mp4          {kb(SAMPLE.stat().st_size)}  the sample talk"
        )
        console.print(
            f"     pending/{IMPOSTOR}  {kb(len(IMPOSTOR_TEXT))}  "
            "a text file named .mp4, to show failed/"
        )

        command = [
            "videopipe",
            "run",
            f"s3://{BUCKET}",
            "--endpoint",
            endpoint,
            "--once",
            "--no-summary",
        ]
        step(3, f"Running:  {' '.join(command)}")
        console.print(
            "     (--no-summary: summaries need Gemini, a remote service; the demo is offline)\n",
            style="dim",
        )
        sys.stdout.flush()  # our lines first, then the runner's
        runner = subprocess.run([sys.executable, "-m", "videopipe", *command[1:]], check=False)
        console.print(
            f"\n     videopipe run exited {runner.returncode}"
            + (
                " (1: not every video completed — the impostor failed, as it should)"
                if runner.returncode == 1
                else ""
            )
        )

        listing = list_bucket(s3)
        step(4, f"What landed where in s3://{BUCKET}:")
        show_folders(listing)
        error = json.loads(get(s3, f"failed/{IMPOSTOR}.error.json") or "{}")
        if error:
            console.print(f"\n     Why it failed, from failed/{IMPOSTOR}.error.json:")
            console.print(
                f"       [red]{error.get('reason')}[/red]: {error.get('message')} "
                f"(exit code {error.get('exitCode')}, attempt {error.get('attempt')})"
            )
        transcript = get(s3, "results/talk.mp4/transcript.txt") or ""
        step(5, "The transcript of talk.mp4 (results/talk.mp4/transcript.txt):")
        for line in transcript.strip().splitlines() or ["(none)"]:
            console.print(Text(f"     {line}", style="green"))

        copy_bucket(s3, listing, args.output)
    ok = (
        "completed/talk.mp4" in listing
        and f"failed/{IMPOSTOR}" in listing
        and error.get("reason") == "NotMedia"
        and bool(transcript.strip())
    )
    console.rule()
    if not ok:
        console.print("[red]The demo did not end as expected; see the output above.[/red]")
        return 1
    console.print(
        f"Done in {time.monotonic() - started:.0f} s. A copy of the bucket is in "
        f"{display_path(args.output)}/.\n"
        "On your own bucket:  videopipe run s3://BUCKET [--endpoint URL] --watch"
        "   (README: Single machine)"
    )
    return 0


@contextmanager
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def list_bucket(s3) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def show_folders(listing: dict[str, int]) -> None:
    for folder in FOLDERS:
        names = sorted(k[len(folder) + 1 :] for k in listing if k.startswith(f"{folder}/"))
        if folder == "results":
            names = group_results(names)
        console.print(f"     [bold]{folder + '/':<12}[/bold]", end="")
        console.print(("\n" + " " * 17).join(names) if names else "[dim](empty)[/dim]")
    locks = [k for k in listing if k.startswith(".videopipe/")]
    console.print(
        f"     [bold]{'.videopipe/':<12}[/bold]"
        + (
            f"{len(locks)} lock(s) left"
            if locks
            else "[dim](no locks left: every claim was released)[/dim]"
        )
    )


def group_results(names: list[str]) -> list[str]:
    """`talk.mp4/manifest.json`, ... → `talk.mp4/  manifest.json transcript.json ...`."""
    by_video: dict[str, list[str]] = {}
    for name in names:
        video, _, file = name.rpartition("/")
        by_video.setdefault(video, []).append(file)
    return [f"{video}/  {' '.join(files)}" for video, files in by_video.items()]


def get(s3, key: str) -> str | None:
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None


def copy_bucket(s3, listing: dict[str, int], target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for key in listing:
        if key.endswith("/"):
            continue
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(path))


def step(number: int, text: str) -> None:
    console.print(f"\n[bold cyan]{number}.[/bold cyan] {text}")


def kb(size: int) -> str:
    return f"{size / 1024:6.1f} KB" if size >= 1024 else f"{size:>4} bytes"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
