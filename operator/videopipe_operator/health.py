"""Liveness (`/healthz`) and readiness (`/readyz`) on `--health-port`, default 8080.

Liveness means "the operator really works", not "the bucket is fine": each source daemon
reports a heartbeat when it starts and after every pass, successful or not, and `/healthz` fails
(503) when one has not finished a pass within `liveness_polls` of its intervals (and at least the
grace period); checks added with `add_check` (the watch audit of `watches`) fail it too. A
restart fixes a stuck thread or a dead watch; it does not fix a missing Secret, which is
therefore a VideoSource condition, never a liveness failure. Readiness is decided by
`readiness`, which says here what it is still waiting for. The kubelet's probe Events show only
the status code, so each change of verdict is logged with its reasons (`kubectl logs --previous`
after a restart).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
Check = Callable[[], str | None]  # None when healthy, else what is wrong


class Health:
    def __init__(
        self,
        liveness_polls: int = 5,
        grace_seconds: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.liveness_polls = liveness_polls
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, tuple[float, float]] = {}  # name → (last beat, interval)
        self._checks: dict[str, Check] = {}
        self._ready = threading.Event()
        self._waiting_for = "starting"
        self._failing: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    # -- reporting --

    def beat(self, name: str, interval: float) -> None:
        with self._lock:
            self._beats[name] = (self.clock(), interval)

    def forget(self, name: str) -> None:
        with self._lock:
            self._beats.pop(name, None)

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def mark_ready(self) -> None:
        self._ready.set()

    def waiting_for(self, reason: str) -> None:
        """Why /readyz still answers 503 (shown in its body)."""
        self._waiting_for = reason

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def readiness_text(self) -> str:
        return "ok" if self.ready else self._waiting_for

    # -- judging --

    def problems(self) -> list[str]:
        now = self.clock()
        out = []
        with self._lock:
            beats = dict(self._beats)
        for name, (last, interval) in sorted(beats.items()):
            allowed = max(self.grace_seconds, self.liveness_polls * interval)
            if now - last > allowed:
                out.append(f"{name}: no pass for {now - last:.0f} s (allowed {allowed:.0f} s)")
        for name, check in sorted(self._checks.items()):
            try:
                problem = check()
            except Exception as e:  # a broken check is itself a problem
                problem = f"check failed: {e}"
            if problem:
                out.append(f"{name}: {problem}")
        self._log_change(out)
        return out

    def _log_change(self, problems: list[str]) -> None:
        with self._lock:
            was, self._failing = self._failing, problems
        if problems and not was:
            log.warning("liveness failing (/healthz 503): %s", "; ".join(problems))
        elif was and not problems:
            log.warning("liveness recovered (/healthz 200)")

    # -- serving --

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve in a daemon thread; returns the bound port (0 disables)."""
        if port <= 0:
            return 0
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/healthz":
                    problems = health.problems()
                    self._answer(503 if problems else 200, "\n".join(problems) or "ok")
                elif self.path.split("?")[0] == "/readyz":
                    self._answer(200 if health.ready else 503, health.readiness_text)
                else:
                    self._answer(404, "not found")

            def _answer(self, code: int, text: str) -> None:
                body = (text + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the operator's log

        self._server = ThreadingHTTPServer((address, port), Handler)
        thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)
        thread.start()
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


__all__ = ["Health"]
