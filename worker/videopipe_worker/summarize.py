"""Title, summary, chapters and keywords from Gemini, as structured JSON.

The response schema makes Gemini answer in a shape we can check rather than parse
from prose; an answer that does not fit is asked again, then reported. Rate limits
(429) and server errors (5xx) are retried with exponential backoff by google-genai's
own retry options. The transcript is sent with a timestamp on every segment so that
chapters can start at real times. The summary is optional: without an API key it
is skipped with a one-line notice and the transcript still succeeds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from videopipe.reasons import Reason

from .errors import ConfigError, Retryable
from .transcribe import Transcript

if TYPE_CHECKING:
    from .schema import VideoSummary

log = logging.getLogger(__name__)

DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504]
BAD_ANSWER_TRIES = 3  # a malformed structured answer is asked again this many times
INSTRUCTION = (
    "You summarise transcripts of recorded talks and meetings. Answer in the language of "
    "the transcript. Give a short title, a summary of one or two paragraphs, chapters that "
    "follow the structure of the talk (each with the start time in seconds taken from the "
    "timestamps, a title and one sentence), and up to ten keywords."
)


def api_key_from_env(env: Mapping[str, str] = os.environ) -> str | None:
    """The key google-genai itself would pick (GOOGLE_API_KEY first)."""
    return env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY") or None


def transcript_prompt(transcript: Transcript) -> str:
    lines = [f"[{segment.start:.0f}s] {segment.text}" for segment in transcript.segments]
    return (
        f"Transcript ({transcript.duration:.0f} seconds, language {transcript.language}):\n"
        + "\n".join(lines)
    )


def summarize(
    transcript: Transcript,
    *,
    api_key: str,
    model: str = DEFAULT_GEMINI_MODEL,
    base_url: str | None = None,
    attempts: int = 5,
    timeout_seconds: float = 300,
) -> dict[str, Any]:
    """Ask Gemini for a VideoSummary of the transcript; a plain dict for summary.json."""
    from google import genai
    from google.genai import errors, types

    from .schema import VideoSummary

    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(
                attempts=attempts,
                initial_delay=1.0,
                max_delay=30.0,
                http_status_codes=RETRY_STATUS_CODES,
            ),
        ),
    )
    config = types.GenerateContentConfig(
        system_instruction=INSTRUCTION,
        response_mime_type="application/json",
        response_schema=VideoSummary,
        temperature=0.2,
    )
    prompt = transcript_prompt(transcript)
    for _ in range(BAD_ANSWER_TRIES):
        try:
            response = client.models.generate_content(model=model, contents=prompt, config=config)
        except errors.ClientError as err:
            raise _client_error(err, model) from err
        except errors.ServerError as err:
            raise Retryable(
                Reason.GEMINI_UNAVAILABLE, f"Gemini failed after {attempts} attempts: {err}"
            ) from err
        except Exception as err:  # transport: timeouts, refused connections (httpx)
            raise Retryable(Reason.GEMINI_UNREACHABLE, f"cannot reach Gemini: {err!r}") from err
        parsed = response.parsed
        if isinstance(parsed, VideoSummary):
            return _clean(parsed, transcript.duration, model)
        log.warning("Gemini's answer did not match the summary schema; asking again")
    raise Retryable(
        Reason.GEMINI_BAD_RESPONSE, "Gemini kept answering in a shape that is not a summary"
    )


def _clean(summary: VideoSummary, duration: float, model: str) -> dict[str, Any]:
    chapters = sorted(
        (
            {
                "start": round(min(max(c.start_seconds, 0.0), duration), 3),
                "title": c.title.strip(),
                "summary": c.summary.strip(),
            }
            for c in summary.chapters
        ),
        key=lambda c: c["start"],
    )
    return {
        "title": summary.title.strip(),
        "summary": summary.summary.strip(),
        "chapters": chapters,
        "keywords": [k.strip() for k in summary.keywords if k.strip()],
        "model": model,
    }


def _client_error(err: Any, model: str) -> Exception:
    code = getattr(err, "code", 0)
    if code == 429:
        return Retryable(
            Reason.GEMINI_RATE_LIMITED, f"Gemini rate limit still exceeded after retries: {err}"
        )
    if code in (401, 403) or "api key" in str(err).lower():
        return ConfigError(
            Reason.GEMINI_AUTH, f"Gemini refused the API key ({code}): check GEMINI_API_KEY"
        )
    if code == 404:
        return ConfigError(
            Reason.GEMINI_MODEL_NOT_FOUND, f"no Gemini model {model!r}: check --gemini-model"
        )
    return ConfigError(Reason.GEMINI_REJECTED, f"Gemini rejected the request ({code}): {err}")


__all__ = ["DEFAULT_GEMINI_MODEL", "api_key_from_env", "summarize"]
