"""Transcript files: JSON for programs, SRT and WebVTT for players, TXT for people.

Pure functions from a Transcript to text, so every format is tested without a model.
Cues follow Whisper's segments; timestamps are clamped to be non-decreasing because
players reject cues that go back in time.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .transcribe import Transcript


def transcript_dict(transcript: Transcript) -> dict[str, Any]:
    data = asdict(transcript)
    if all(s.words is None for s in transcript.segments):
        for segment in data["segments"]:
            segment.pop("words")
    data["text"] = transcript.text
    return data


def to_json(transcript: Transcript) -> str:
    return json.dumps(transcript_dict(transcript), ensure_ascii=False, indent=2) + "\n"


def to_txt(transcript: Transcript) -> str:
    return "".join(f"{segment.text}\n" for segment in transcript.segments)


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{n}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for n, (start, end, text) in enumerate(_cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [
        f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n"
        for start, end, text in _cues(transcript)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    cues, last = [], 0.0
    for segment in transcript.segments:
        start = max(segment.start, last)
        end = max(segment.end, start)
        # A cue's text may not contain a blank line (it would end the cue) or "-->".
        text = " ".join(segment.text.split()).replace("-->", "->")
        cues.append((start, end, text))
        last = end
    return cues


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


__all__ = ["to_json", "to_srt", "to_txt", "to_vtt", "transcript_dict"]
