"""Summaries through Gemini's REST protocol, served by a local stand-in.

google-genai talks to the `gemini` fixture over HTTP exactly as it talks to Google:
same path, same API-key header, same structured-output request. We check what the
worker asked for (a response schema), what it wrote, and how it handles 429s, a
refused key and a missing key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_transcribe
from tests.support.gemini import FakeGemini


@pytest.fixture(scope="module")
def short_talk(media_dir: Path) -> Path:
    from tests.support import media

    return media.talk(
        "Welcome to the planning meeting. We agreed to ship the new release in March. "
        "Thank you, everyone.",
        media_dir / "planning.mp4",
    )


def summarize(short_talk: Path, out: Path, gemini: FakeGemini, *extra: str, key: str = "test-key"):
    return run_transcribe(
        str(short_talk),
        "--output",
        str(out),
        "--gemini-base-url",
        gemini.url,
        "--gemini-model",
        "gemini-test",
        *extra,
        env={"GEMINI_API_KEY": key} if key else {},
    )


def test_summary_is_written_from_a_structured_answer(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    run = summarize(short_talk, tmp_path, gemini)
    assert run.code == 0, run
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["title"] == "A talk about video pipelines"
    assert summary["chapters"] and summary["chapters"][0]["start"] == 0.0
    assert summary["model"] == "gemini-test"
    assert summary["keywords"]

    [request] = gemini.requests
    assert request.model == "gemini-test" and request.api_key == "test-key"
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = json.dumps(config.get("responseSchema") or config.get("responseJsonSchema"))
    assert all(field in schema for field in ("title", "chapters", "keywords", "start_seconds"))
    assert "[0s]" in request.prompt and "release" in request.prompt

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["summary"] == "written" and "summary.json" in manifest["files"]
    assert run.report["summary"] is True


def test_rate_limit_then_success_is_retried(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    gemini.statuses.extend([429, 503])
    run = summarize(short_talk, tmp_path, gemini)
    assert run.code == 0, run
    assert len(gemini.requests) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["title"]


def test_rate_limit_that_never_ends_is_retryable_and_keeps_the_transcript(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    gemini.statuses.extend([429] * 10)
    run = summarize(short_talk, tmp_path, gemini)
    assert run.code == 1, run
    assert run.report["reason"] == "GeminiRateLimited"
    assert len(gemini.requests) == 5  # the retry budget, then give up
    assert (tmp_path / "transcript.json").exists()
    assert not (tmp_path / "manifest.json").exists()  # not done: no manifest


def test_refused_key_is_a_configuration_error(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    gemini.statuses.append(403)
    run = summarize(short_talk, tmp_path, gemini)
    assert run.code == 2, run
    assert run.report["reason"] == "GeminiAuth"
    assert "check GEMINI_API_KEY" in run.stderr
    assert len(gemini.requests) == 1  # a refused key is not retried


def test_answer_that_breaks_the_schema_is_asked_again_then_reported(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    gemini.answer_text = json.dumps({"title": "only a title"})
    run = summarize(short_talk, tmp_path, gemini)
    assert run.code == 1, run
    assert run.report["reason"] == "GeminiBadResponse"
    assert len(gemini.requests) == 3


def test_without_a_key_the_summary_is_skipped_and_the_rest_succeeds(
    short_talk: Path, tmp_path: Path, gemini: FakeGemini
) -> None:
    run = summarize(short_talk, tmp_path, gemini, key="")
    assert run.code == 0, run
    assert gemini.requests == []
    assert not (tmp_path / "summary.json").exists()
    notices = [line for line in run.stderr.splitlines() if "summary skipped" in line]
    assert len(notices) == 1 and "GEMINI_API_KEY" in notices[0]
