"""Test media made from known text: espeak-ng speaks it, ffmpeg wraps it.

Because we know every word that was spoken, a transcript can be checked word by
word. Every function writes real files with the real tools (Debian's espeak-ng and
ffmpeg); nothing is faked. Used by the worker, operator and runner tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SPEECH_RATE_WPM = 150  # tiny.en was measured on espeak-ng speech at this rate (test_speech)


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def speak(text: str, wav: Path) -> Path:
    """A WAV of espeak-ng reading `text`."""
    run("espeak-ng", "-s", str(SPEECH_RATE_WPM), "-w", str(wav), text)
    return wav


def duration(path: Path) -> float:
    """The container's duration in seconds, as ffprobe reads it."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)


def video_with_audio(audio: Path, target: Path, *, faststart: bool = True) -> Path:
    """An H.264 + AAC mp4 with a still picture, as a phone or OBS would upload.

    The length is explicit: `-shortest` overshoots with x264's look-ahead on an endless
    picture, which would give a container longer than its audio.
    """
    picture = ["-f", "lavfi", "-i", "color=c=navy:s=160x90:r=2"]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "48k", "-ac", "1"]
    layout = ["-movflags", "+faststart"] if faststart else []
    length = ["-t", f"{duration(audio):.3f}"]
    run(
        "ffmpeg",
        "-v",
        "error",
        "-y",
        *picture,
        "-i",
        str(audio),
        *length,
        *codecs,
        *layout,
        str(target),
    )
    return target


def talk(text: str, target: Path, *, faststart: bool = True) -> Path:
    wav = speak(text, target.with_suffix(".wav"))
    return video_with_audio(wav, target, faststart=faststart)


def silence(target: Path, seconds: float = 20) -> Path:
    return _generated_audio("anullsrc=r=16000:cl=mono", target, seconds)


def noise(target: Path, color: str = "pink", seconds: float = 20, amplitude: float = 0.3) -> Path:
    return _generated_audio(
        f"anoisesrc=color={color}:amplitude={amplitude}:r=16000", target, seconds
    )


def _generated_audio(source: str, target: Path, seconds: float) -> Path:
    run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds), str(target))
    return target


def video_without_audio(target: Path, seconds: float = 3) -> Path:
    run(
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=160x90:r=10",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(target),
    )
    return target


def truncated_copy(source: Path, target: Path, keep: float = 0.3) -> Path:
    """The first `keep` share of a file's bytes: an upload that was cut off."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target
