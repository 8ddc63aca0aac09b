"""Probe a video and decode its audio to 16 kHz mono, as a stream, as faster-whisper would.

We probe because faster-whisper fails obscurely on a file with no audio stream, and because
ffmpeg can exit 0 having decoded only part of a truncated file (docs/architecture.md, "Measured
facts"): comparing the decoded length with the container's duration is the only reliable check
(made when the stream ends). The probe and the decode run at the same time (the probe's verdict
is checked before the audio is used). Audio is streamed from ffmpeg's stdout into numpy blocks,
a bounded amount at a time: no WAV file on disk, and a URL input is read in byte ranges, never
piped to stdin.

ffmpeg delivers 16-bit samples, scaled to float32 by 1/32768 exactly as faster-whisper's own
`decode_audio` does. Asking ffmpeg for float32 instead keeps AAC's overshoot above 1.0 (peaks of
1.18 measured on espeak speech), which `decode_audio` clips: the model then heard different
audio from bare faster-whisper on the same file, and the transcripts differed by a few words.
With 16-bit samples the two agree to one least significant bit (docs/architecture.md,
"Measured facts").
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass

import ffmpeg
import numpy as np
from videopipe.reasons import Reason

from .errors import BadInput, ConfigError, Retryable, WorkerError

SAMPLE_RATE = 16_000
# A decode shorter than this share of the advertised duration means a truncated file.
MIN_DECODED_SHARE = 0.9
NETWORK_TIMEOUT_US = str(60 * 1_000_000)
RECONNECT_HTTP_ERRORS = "429,5xx"  # throttling and server faults; never 403 or 404
RECONNECT_MAX_DELAY_S = 30
BLOCK_BYTES = 1 << 19  # 16 s of 16-bit audio per read from ffmpeg
PCM_SCALE = 1 / 32768  # int16 → float32 in [-1, 1), as faster_whisper.decode_audio scales
SKIP_SAMPLES = 60 * SAMPLE_RATE
ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}


@dataclass(frozen=True)
class MediaInfo:
    name: str
    format_name: str
    duration: float | None  # container duration, seconds
    audio_duration: float | None  # first audio stream's own duration, if stated
    audio_codec: str
    sample_rate: int | None
    channels: int | None
    has_video: bool
    ffmpeg_version: str = "unknown"  # of the ffprobe that read it, for the manifest

    @property
    def expected_audio_seconds(self) -> float | None:
        return self.audio_duration or self.duration


def probe(source: str, name: str, size: int | None = None) -> MediaInfo:
    """Read container and stream facts; BadInput with a plain reason when unusable."""
    if size == 0:
        raise BadInput(Reason.EMPTY_INPUT, f"{name} is empty (0 bytes): upload the video again")
    try:
        data = ffmpeg.probe(source, show_program_version=None, **_network_options(source))
    except ffmpeg.Error as err:
        raise _classify(err, name, "read", source) from err
    streams = data.get("streams", [])
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise BadInput(
            Reason.NO_AUDIO_STREAM, f"no audio stream in {name}: there is nothing to transcribe"
        )
    fmt = data.get("format", {})
    return MediaInfo(
        name=name,
        format_name=str(fmt.get("format_name", "")),
        duration=_float(fmt.get("duration")),
        audio_duration=_float(audio.get("duration")),
        audio_codec=str(audio.get("codec_name", "")),
        sample_rate=int(audio["sample_rate"]) if audio.get("sample_rate") else None,
        channels=audio.get("channels"),
        has_video=any(s.get("codec_type") == "video" for s in streams),
        ffmpeg_version=str(data.get("program_version", {}).get("version", "unknown")),
    )


def check_duration(info: MediaInfo, max_seconds: float) -> None:
    seconds = info.expected_audio_seconds
    if max_seconds > 0 and seconds is not None and seconds > max_seconds:
        raise BadInput(
            Reason.TOO_LONG,
            f"{info.name} is {seconds / 3600:.1f} h long, over the limit of "
            f"{max_seconds / 3600:.1f} h (--max-duration): split it or raise the limit",
        )


class AudioDecoder:
    """ffmpeg decoding the first audio stream to 16 kHz mono (float32 blocks), as a stream.

    Started before the probe so that the two ffmpeg runs overlap instead of queueing;
    leaving the `with` block early (the probe refused the input) kills ffmpeg, so a
    12-hour upload is not decoded only to be refused as too long. A reader thread keeps
    at most `buffer_seconds` of decoded audio ahead of the consumer (0: no limit), so
    memory follows the window being transcribed, not the length of the video; ffmpeg
    simply blocks on the pipe until the consumer catches up.
    """

    def __init__(self, source: str, buffer_seconds: float = 0.0) -> None:
        self.source = source
        self.started = time.perf_counter()
        self.seconds = 0.0  # wall time until ffmpeg finished
        self.decoded = 0  # samples ffmpeg has delivered so far
        self._capacity = int(buffer_seconds * SAMPLE_RATE)
        self._blocks: deque[np.ndarray] = deque()
        self._buffered = 0
        self._eof = self._closed = False
        self._ready = threading.Condition()
        self._stderr = b""
        stream = (
            ffmpeg.input(source, **_network_options(source))
            .output("pipe:", map="0:a:0", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE)
            .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        )
        self._process = stream.run_async(pipe_stdout=True, pipe_stderr=True)
        self._errors = threading.Thread(
            target=self._drain_stderr, name="ffmpeg-stderr", daemon=True
        )
        self._errors.start()
        self._reader = threading.Thread(target=self._drain, name="ffmpeg-decode", daemon=True)
        self._reader.start()

    def _drain_stderr(self) -> None:
        self._stderr = self._process.stderr.read()

    def _drain(self) -> None:
        stdout, rest = self._process.stdout, b""
        while True:
            with self._ready:
                while self._capacity and self._buffered >= self._capacity and not self._closed:
                    self._ready.wait()
                if self._closed:
                    break
            data = stdout.read(BLOCK_BYTES)
            if not data:
                break
            data, usable = rest + data, len(rest + data) // 2 * 2
            rest = data[usable:]
            block = np.frombuffer(data[:usable], dtype=np.int16).astype(np.float32) * PCM_SCALE
            with self._ready:
                self._blocks.append(block)
                self._buffered += block.size
                self.decoded += block.size
                self._ready.notify_all()
        self._process.wait()
        self._errors.join()
        self.seconds = round(time.perf_counter() - self.started, 3)
        with self._ready:
            self._eof = True
            self._ready.notify_all()

    def __enter__(self) -> AudioDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        if self._process.poll() is None:
            self._process.kill()
        self._reader.join()

    def prefetch(self) -> bool:
        """Wait until the buffer is full or ffmpeg is done; True when it is done."""
        with self._ready:
            while not self._eof and not (self._capacity and self._buffered >= self._capacity):
                self._ready.wait()
            return self._eof

    def read(self, samples: int) -> np.ndarray:
        """The next `samples` of audio; fewer only at the end of the stream."""
        parts, wanted = [], samples
        with self._ready:
            while wanted:
                while not self._blocks and not self._eof:
                    self._ready.wait()
                if not self._blocks:
                    break
                block = self._blocks.popleft()
                if block.size > wanted:
                    self._blocks.appendleft(block[wanted:])
                    block = block[:wanted]
                parts.append(block)
                wanted -= block.size
                self._buffered -= block.size
                self._ready.notify_all()
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)

    def skip(self, samples: int) -> int:
        """Drop audio already transcribed by an earlier attempt; the samples dropped."""
        dropped = 0
        while dropped < samples:
            part = self.read(min(samples - dropped, SKIP_SAMPLES))
            if part.size == 0:
                break
            dropped += part.size
        return dropped

    def check(self, info: MediaInfo) -> None:
        """At the end of the stream: the decode, checked against what the probe says."""
        with self._ready:
            while not self._eof:
                self._ready.wait()
        if self._process.returncode != 0:
            error = ffmpeg.Error("ffmpeg", b"", self._stderr)
            raise _classify(error, info.name, "decode", self.source)
        decoded = self.decoded / SAMPLE_RATE
        expected = info.expected_audio_seconds
        if self.decoded == 0:
            raise BadInput(
                Reason.CORRUPT, f"no audio could be decoded from {info.name}: the file is corrupt"
            )
        if expected and decoded < expected * MIN_DECODED_SHARE - 1.0:
            raise BadInput(
                Reason.TRUNCATED,
                f"{info.name} is truncated: it says {expected:.0f} s but only {decoded:.0f} s "
                "of audio could be decoded; upload the complete file again",
            )


def _classify(err: ffmpeg.Error, name: str, stage: str, source: str) -> WorkerError:
    """Turn ffmpeg's stderr into a reason a user understands.

    A presigned URL carries a signature: it is replaced by the name before any of
    ffmpeg's text reaches a message, a log or a termination report.
    """
    text = (err.stderr or b"").decode(errors="replace").replace(source, name)
    detail = _last_line(text)
    lowered = text.lower()
    if re.search(r"server returned (403|401)", lowered):
        return ConfigError(Reason.S3_ACCESS_DENIED, f"access denied reading {name}: {detail}")
    if "server returned 404" in lowered:
        return ConfigError(Reason.INPUT_NOT_FOUND, f"{name} no longer exists in the bucket")
    if any(
        word in lowered
        for word in ("connection refused", "timed out", "connection reset", "server returned 5")
    ):
        return Retryable(
            Reason.INPUT_UNREACHABLE, f"cannot {stage} {name} over the network: {detail}"
        )
    if "moov atom not found" in lowered and _starts_like_mp4(source):
        return BadInput(
            Reason.TRUNCATED,
            f"{name} is truncated or still uploading (moov atom not found): upload it again",
        )
    if any(
        phrase in lowered
        for phrase in ("invalid data found", "could not find codec", "moov atom not found")
    ):
        return BadInput(Reason.NOT_MEDIA, f"{name} is not a video or audio file ffmpeg can read")
    return BadInput(Reason.CORRUPT, f"cannot {stage} {name}: {detail or 'ffmpeg failed'}")


def _starts_like_mp4(source: str) -> bool:
    """An ISO media file (mp4, mov, m4a) opens with a box such as `ftyp` at byte 4.

    ffmpeg picks its demuxer from the extension, so a text file named `.mp4` also
    reports a missing moov atom: the first bytes tell a cut-off upload from a non-video.
    """
    try:
        if source.startswith(("http://", "https://")):
            request = urllib.request.Request(source, headers={"Range": "bytes=0-11"})
            with urllib.request.urlopen(request, timeout=10) as response:
                head = response.read(12)
        else:
            with open(source, "rb") as file:
                head = file.read(12)
    except OSError:
        return True  # cannot tell: the message about truncation is the likelier one
    return head[4:8] in ISO_BOXES


def _network_options(source: str) -> dict[str, str]:
    """For a URL: ride out a busy store, but fail a stalled one instead of hanging the Job.

    A throttled (429, 5xx) or refused request and a connection lost before the end of the
    object are retried by ffmpeg itself, resuming at the byte it had reached, with waits of
    0, 1, 3, 7... s up to `RECONNECT_MAX_DELAY_S`; a read that stalls for `NETWORK_TIMEOUT_US`
    fails. Without this, one `503 SlowDown` on a range request failed a good video's attempt.
    """
    if not source.startswith(("http://", "https://")):
        return {}
    return {
        "rw_timeout": NETWORK_TIMEOUT_US,
        "reconnect": "1",
        "reconnect_on_network_error": "1",
        "reconnect_on_http_error": RECONNECT_HTTP_ERRORS,
        "reconnect_delay_max": str(RECONNECT_MAX_DELAY_S),
    }


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


__all__ = ["SAMPLE_RATE", "AudioDecoder", "MediaInfo", "check_duration", "probe"]
