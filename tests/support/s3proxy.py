"""S3-compatible stores that lack a feature: moto behind a proxy that drops headers.

Real stores differ from AWS S3 in what they honour. Two matter to videopipe, and each is
moto seen through this proxy, which forwards every request unchanged except the headers it
is told to drop for given methods, so the store really never sees them:

- `UNCONDITIONAL_WRITES`: `If-None-Match` / `If-Match` dropped from PUT and DELETE, as on a
  store that ignores conditional writes (GCS's S3 interoperability does not document them).
  `videopipe run`'s start-up probe must notice by the answers alone.
- `NO_RANGES`: `Range` dropped from GET, as on a gateway that always sends the whole
  object; the worker must fall back to a download.

It can also be a store under load: `FlakyReads` answers ranged GETs (how ffmpeg and the
worker's range probe read a video) with `503 SlowDown` or drops the connection half-way
through the body, on a fixed schedule per client so that a test knows each fault was met.
`Scripted` is a store that throttles or resets whatever comes first: the next requests of
any kind get its actions in turn (`"503"` SlowDown, `"reset"`: the connection is reset
before any answer), then everything is forwarded.
"""

from __future__ import annotations

import socket
import struct
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.localserver import LocalServer

UNCONDITIONAL_WRITES = {"if-none-match": {"PUT", "DELETE"}, "if-match": {"PUT", "DELETE"}}
NO_RANGES = {"range": {"GET"}}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_opener = urllib.request.build_opener(_NoRedirect)

SLOW_DOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class FlakyReads:
    """Faults for ranged GETs: the n-th such request of each client (by User-Agent family,
    `Lavf` for ffmpeg and ffprobe) gets `schedule[n % len(schedule)]`: `"503"`, `"drop"`
    (half the body, then the connection closes) or `"ok"`."""

    schedule: tuple[str, ...] = ("503", "drop", "ok", "ok")
    seen: Counter[str] = field(default_factory=Counter)
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (client, fault)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, user_agent: str) -> str:
        client = user_agent.split("/")[0] or "unknown"
        with self._lock:
            action = self.schedule[self.seen[client] % len(self.schedule)]
            self.seen[client] += 1
            if action != "ok":
                self.injected[client, action] += 1
        return action


@dataclass
class Scripted:
    """Faults for the next requests, whatever they are: `actions` in turn, then none.

    `injected` counts the faults dealt, so that a test compares what a client counted with
    what it met."""

    actions: list[str] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> str:
        with self._lock:
            if not self.actions:
                return "ok"
            action = self.actions.pop(0)
            self.injected[action] += 1
        return action


class S3Proxy(LocalServer):
    """Forwards to `upstream`, minus the headers in `drop` (header -> methods)."""

    def __init__(
        self,
        upstream: str,
        drop: dict[str, set[str]],
        faults: FlakyReads | None = None,
        script: Scripted | None = None,
    ) -> None:
        self.faults = faults
        self.script = script
        self.dropped = 0  # headers removed so far
        self.full_gets = 0  # GETs answered with the whole object (200)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self._body()
                action = script.next_action() if script else "ok"
                if action == "reset":
                    # Linger 0: closing sends RST, not FIN, as a store's overloaded balancer.
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                if action == "ok" and faults and self.command == "GET" and "Range" in self.headers:
                    action = faults.next_action(self.headers.get("User-Agent", ""))
                if action == "503":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                headers = {}
                for name, value in self.headers.items():
                    lower = name.lower()
                    if lower in HOP_BY_HOP or lower == "host":
                        continue
                    if self.command in drop.get(lower, ()):
                        proxy.dropped += 1
                        continue
                    headers[name] = value
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                    # Else urllib adds a form Content-Type, and the store (werkzeug) then reads
                    # a body such as DeleteObjects' XML as a form and sees it empty.
                    if not any(name.lower() == "content-type" for name in headers):
                        headers["Content-Type"] = "application/octet-stream"
                request = urllib.request.Request(
                    upstream + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with _opener.open(request, timeout=60) as response:
                        status, reply, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as err:
                    status, reply, data = err.code, err.headers, err.read()
                if self.command == "GET" and status == 200:
                    proxy.full_gets += 1
                self.send_response(status)
                for name, value in reply.items():
                    if name.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                        self.send_header(name, value)
                if reply.get("Date"):
                    self.send_header("Date", reply["Date"])  # the store's clock, not ours
                length = reply.get("Content-Length") if self.command == "HEAD" else len(data)
                self.send_header("Content-Length", str(length or 0))
                self.end_headers()
                if action == "drop":
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True  # the client sees the body end early
                elif self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length", 0) or 0)
                if length or self.command in {"PUT", "POST"}:
                    return self.rfile.read(length)
                return None

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def send_response(self, code: int, message: str | None = None) -> None:
                # No Server/Date of our own: the store's Date is forwarded above.
                self.log_request(code)
                self.send_response_only(code, message)

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


__all__ = ["NO_RANGES", "UNCONDITIONAL_WRITES", "FlakyReads", "S3Proxy", "Scripted"]
