"""Cut a decoded audio stream into windows that end in a silence.

The batched pipeline holds a whole input's audio and features at once (memory grew
about 770 MB per hour of audio), so the worker transcribes a long input window by
window and keeps at most one window and the decoder's read-ahead in memory. A window
ends in the longest pause that Silero VAD (faster-whisper's own) finds in its last
minute, cut in the middle of that pause: no word is split, and because windows do
not overlap, none is heard twice. Cuts depend only on the audio, so a resumed attempt
cuts exactly where the first one did. An input shorter than one window is one
window: the whole audio, as before windowing existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .media import SAMPLE_RATE, AudioDecoder, MediaInfo

DEFAULT_WINDOW_SECONDS = 900.0
MIN_WINDOW_SECONDS = 20.0  # a cut needs a few seconds to look for a pause in
CUT_SEARCH_SECONDS = 60.0  # where, before a window's end, a pause is looked for
VAD_FRAME = 512  # Silero's frame: 32 ms
SILENCE_PROBABILITY = 0.35  # faster-whisper's default end-of-speech threshold


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first sample, counted from the start of the input
    audio: np.ndarray
    last: bool

    @property
    def end(self) -> int:
        return self.start + self.audio.size


def quietest_point(speech_probabilities: np.ndarray) -> int:
    """The frame in the middle of the longest run of non-speech frames, or the frame
    least likely to be speech when there is no pause at all (music, a fast talker)."""
    quiet = speech_probabilities < SILENCE_PROBABILITY
    if not quiet.any():
        return int(np.argmin(speech_probabilities))
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    longest = len(lengths) - 1 - int(np.argmax(lengths[::-1]))  # the latest of equals
    return int((starts[longest] + ends[longest]) // 2)


def cut_point(audio: np.ndarray, search_seconds: float) -> int:
    """Where to end a window: a sample inside the pause found near its end."""
    from faster_whisper.vad import get_vad_model

    search = min(int(search_seconds * SAMPLE_RATE), audio.size) // VAD_FRAME * VAD_FRAME
    offset = audio.size - search
    # A copy: the model zeroes the last 64 samples of what it is given, in place.
    probabilities = np.asarray(get_vad_model()(audio[offset:].copy())).reshape(-1)
    return offset + quietest_point(probabilities) * VAD_FRAME + VAD_FRAME // 2


def windows(
    decoder: AudioDecoder,
    info: MediaInfo,
    window_seconds: float,
    *,
    start: int = 0,
    first_index: int = 0,
) -> Iterator[Window]:
    """Windows from `start` (a sample where an earlier window ended) to the end.

    `window_seconds` 0 means one window of the whole input. The decode is checked
    (truncated, corrupt) before the last window is handed out.
    """
    if start:
        decoder.skip(start)
    size = int(window_seconds * SAMPLE_RATE) if window_seconds > 0 else 0
    search = min(CUT_SEARCH_SECONDS, window_seconds / 4)
    carry = np.empty(0, dtype=np.float32)
    index, position = first_index, start
    while True:
        wanted = size - carry.size if size else 2**62
        fresh = decoder.read(wanted)
        ended = fresh.size < wanted
        audio = np.concatenate((carry, fresh)) if carry.size else fresh
        del fresh, carry
        if ended:
            decoder.check(info)
            yield Window(index, position, audio, last=True)
            return
        cut = cut_point(audio, search)
        yield Window(index, position, audio[:cut], last=False)
        carry = audio[cut:].copy()  # the window's array is freed once it is transcribed
        del audio
        index, position = index + 1, position + cut


__all__ = [
    "DEFAULT_WINDOW_SECONDS",
    "MIN_WINDOW_SECONDS",
    "Window",
    "cut_point",
    "quietest_point",
    "windows",
]
