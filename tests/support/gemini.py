"""A local HTTP server that speaks the Gemini REST protocol (generateContent).

Gemini is a paid remote API that tests cannot reach: this is the one stand-in for a remote
service the project allows (every other part is real). It answers
`POST /<version>/models/<model>:generateContent` the way Gemini does: a candidate whose text
part is JSON matching the request's response schema. Tests queue status codes (429, 503, ...) to
exercise retries, and read back every request it received.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.localserver import LocalServer

ROUTE = re.compile(r"^/[^/]+/models/(?P<model>[^/:]+):generateContent$")


@dataclass
class Request:
    model: str
    api_key: str | None
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return " ".join(
            part.get("text", "")
            for content in self.body.get("contents", [])
            for part in content.get("parts", [])
        )


@dataclass
class FakeGemini(LocalServer):
    """Serves until `close()`; `statuses` are answered first, then summaries."""

    statuses: deque[int] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    answer_text: str | None = None  # override the JSON text of a 200 answer

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                match = ROUTE.match(self.path.split("?", 1)[0])
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not match:
                    self._send(404, {"error": {"code": 404, "message": "not found"}})
                    return
                fake.requests.append(
                    Request(match["model"], self.headers.get("x-goog-api-key"), body)
                )
                status = fake.statuses.popleft() if fake.statuses else 200
                if status != 200:
                    self._send(
                        status,
                        {
                            "error": {
                                "code": status,
                                "message": "fake error",
                                "status": "UNAVAILABLE",
                            }
                        },
                    )
                    return
                text = fake.answer_text or json.dumps(summary_for(fake.requests[-1]))
                self._send(
                    200,
                    {
                        "candidates": [
                            {
                                "content": {"role": "model", "parts": [{"text": text}]},
                                "finishReason": "STOP",
                            }
                        ],
                        "modelVersion": match["model"],
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


def summary_for(request: Request) -> dict[str, Any]:
    """A schema-conforming answer built from the transcript it was sent."""
    lines = re.findall(r"\[(\d+)s\] ([^\[]+)", request.prompt)
    chapters = [
        {"start_seconds": float(start), "title": text.split(",")[0][:40], "summary": text.strip()}
        for start, text in lines[:: max(1, len(lines) // 3)]
    ]
    words = sorted({w.lower() for w in re.findall(r"[A-Za-z]{7,}", request.prompt)})
    return {
        "title": "A talk about video pipelines",
        "summary": " ".join(text.strip() for _, text in lines[:2]),
        "chapters": chapters,
        "keywords": words[:5],
    }
