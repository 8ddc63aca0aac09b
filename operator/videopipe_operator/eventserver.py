"""The HTTP receiver of pushed bucket events: `POST /events/<namespace>/<source>`.

MinIO, Ceph RGW and SeaweedFS webhooks, EventBridge API destinations and Pub/Sub push
subscriptions POST a source's events here, on a port of its own (not the metrics or health
port: this one faces the stores). A push only turns into a hint for the source's loop; the
answer is 2xx once the hint is recorded (in memory: a crash after that loses it, and the next
poll finds the video anyway), so a sender retries exactly what was not recorded.

Who may push: the bearer token of the source (`Authorization: Bearer <token>`, as MinIO's
`auth_token` and EventBridge's API-key connections send it), or `?token=<token>` for senders
that cannot set a header (a Pub/Sub push endpoint URL). Compared in constant time; never
logged. Any Content-Type is read as JSON: MinIO and Pub/Sub send application/json, SNS sends
text/plain, and a 415 would only add a way to lose events without protecting anything.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from videopipe.layout import Layout

from videopipe_operator import bucketevents, metrics
from videopipe_operator.config import Config

log = logging.getLogger(__name__)

# VIDEOPIPE_EVENTS_MAX_BODY_BYTES: MinIO batches stay far below; a bigger body is not ours.
MAX_BODY = Config.events_max_body_bytes
READ_TIMEOUT = 30.0  # seconds a sender may take to send its request
KIND = "http"
HEALTH_PATH = "/healthz"
_NO_SOURCE = "-"  # the `source` label of a push that names no known source (bounded)
_TOKEN = re.compile(r"token=[^&\s'\"]*")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a Kubernetes object name


@dataclass(frozen=True)
class PushTarget:
    """What the receiver needs of a source: its push token, bucket and folder layout."""

    token: str
    bucket: str
    layout: Layout


# resolve(namespace, source) -> PushTarget; LookupError if unknown or push is not configured.
# Called for every push before the token is checked (so an unknown source is a 404, not a 401:
# source names are not secrets), hence from a cache of the VideoSources and their Secrets,
# not one Kubernetes API read per request.
Resolve = Callable[[str, str], PushTarget]
# hint(namespace, source, keys): record the keys for the source's loop and wake it.
Hint = Callable[[str, str, set[str]], None]


class EventServer:
    """The running receiver; `close()` stops it."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name="videopipe-events", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start(
    port: int,
    resolve: Resolve,
    hint: Hint,
    host: str = "0.0.0.0",
    max_body: int = MAX_BODY,
) -> EventServer:
    """Serve the receiver from a daemon thread (port 0: any free port, see `.port`)."""
    server = _Server((host, port), _Handler)
    server.resolve, server.hint, server.max_body = resolve, hint, max_body
    log.info("receiving bucket events on %s:%d", host, server.server_address[1])
    return EventServer(server)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a store flushing its queue connects many times at once
    resolve: Resolve
    hint: Hint
    max_body: int


class _Rejected(Exception):
    def __init__(self, status: HTTPStatus, reason: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.headers = status, reason, message, headers


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: MinIO and Pub/Sub reuse connections
    timeout = READ_TIMEOUT
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

    def do_POST(self) -> None:
        self._body_read = False
        label = _NO_SOURCE
        try:
            namespace, name = self._source()
            try:
                target = self.server.resolve(namespace, name)
            except LookupError:
                raise _Rejected(
                    HTTPStatus.NOT_FOUND, "UnknownSource", "no such source with push events"
                ) from None
            label = metrics.source_label(namespace, name)
            self._authorize(target.token)
            body = self._body()
            try:
                events = bucketevents.parse(body)
            except bucketevents.MalformedEvent as e:
                raise _Rejected(HTTPStatus.BAD_REQUEST, "Malformed", str(e)) from None
            metrics.EVENTS_RECEIVED.labels(source=label, kind=KIND).inc()
            keys = bucketevents.hint_keys(events, target.bucket, target.layout)
            if keys:
                try:
                    self.server.hint(namespace, name, keys)
                except Exception:
                    log.exception("recording the hint of a push to %s failed", label)
                    raise _Rejected(
                        HTTPStatus.SERVICE_UNAVAILABLE, "HintFailed", "try again later"
                    ) from None
            self._answer(HTTPStatus.OK, {"accepted": len(keys)}, label)
        except _Rejected as r:
            metrics.EVENTS_REJECTED.labels(source=label, kind=KIND, reason=r.reason).inc()
            self._answer(r.status, {"error": r.message}, label, r.reason, r.headers)
        except Exception:
            # resolve() itself failed (the Kubernetes API, a Secret): not the sender's fault.
            log.exception("a push to %s failed", self._path())
            metrics.EVENTS_REJECTED.labels(source=label, kind=KIND, reason="InternalError").inc()
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "try again later"}, label)

    def _not_allowed(self) -> None:
        self._body_read = False
        try:
            self._source()
        except _Rejected as r:
            metrics.EVENTS_REJECTED.labels(source=_NO_SOURCE, kind=KIND, reason=r.reason).inc()
            self._answer(r.status, {"error": r.message}, reason=r.reason)
            return
        reason = "MethodNotAllowed"
        metrics.EVENTS_REJECTED.labels(source=_NO_SOURCE, kind=KIND, reason=reason).inc()
        self._answer(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"{self.command} is not allowed; POST events"},
            reason=reason,
            headers={"Allow": "POST"},
        )

    def do_GET(self) -> None:
        """`GET /healthz`: 200 for a load balancer's health check (a GKE Ingress, say), which
        otherwise takes the receiver for down; every other GET is not allowed."""
        if self._path() == HEALTH_PATH:
            self._body_read = False
            self._answer(HTTPStatus.OK, {"status": "receiving"})
            return
        self._not_allowed()

    do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed

    def _path(self) -> str:
        return urlsplit(self.path).path  # never the query: it may hold the token

    def _source(self) -> tuple[str, str]:
        parts = self._path().split("/")
        if len(parts) == 5 and parts[4] == "":
            parts = parts[:4]
        if len(parts) != 4 or parts[:2] != ["", "events"]:
            raise _Rejected(
                HTTPStatus.NOT_FOUND, "NotFound", "POST to /events/<namespace>/<source>"
            )
        namespace, name = parts[2], parts[3]
        if not _NAME.match(namespace) or not _NAME.match(name):
            raise _Rejected(
                HTTPStatus.NOT_FOUND, "UnknownSource", "no such source with push events"
            )
        return namespace, name

    def _authorize(self, expected: str) -> None:
        given = _bearer(self.headers.get("Authorization", ""))
        if given is None:
            given = (parse_qs(urlsplit(self.path).query).get("token") or [None])[0]
        challenge = 'Bearer realm="videopipe-events"'
        if given is None:
            raise _Rejected(
                HTTPStatus.UNAUTHORIZED,
                "Unauthorized",
                "a bearer token is required",
                **{"WWW-Authenticate": challenge},
            )
        # An empty expected token is a misconfiguration, never an open door.
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Rejected(
                HTTPStatus.UNAUTHORIZED,
                "Unauthorized",
                "the bearer token is wrong",
                **{"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
            )

    def _body(self) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise _Rejected(
                HTTPStatus.LENGTH_REQUIRED, "LengthRequired", "Content-Length is required"
            )
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise _Rejected(HTTPStatus.BAD_REQUEST, "Malformed", "Content-Length is not a number")
        if length > self.server.max_body:
            raise _Rejected(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "TooLarge",
                f"the body is over {self.server.max_body} bytes",
            )
        try:
            body = self.rfile.read(length)
        except OSError:  # the sender stalled past READ_TIMEOUT, or went away
            self.close_connection = True
            raise _Rejected(
                HTTPStatus.REQUEST_TIMEOUT, "Timeout", "the body did not come"
            ) from None
        if len(body) < length:
            self.close_connection = True
            raise _Rejected(HTTPStatus.BAD_REQUEST, "Malformed", "the body ended early")
        self._body_read = True
        return body

    def _answer(
        self,
        status: HTTPStatus,
        doc: dict[str, Any],
        label: str = _NO_SOURCE,
        reason: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(doc).encode()
        # A body we did not read would be taken for the next request: close instead.
        has_body = (
            self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers
        )
        if has_body and not self._body_read:
            self.close_connection = True
        log.debug(
            "%s %s from %s (%s): %d %s",
            self.command,
            self._path(),
            self.client_address[0],
            label,
            status,
            reason or "",
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError as e:  # the sender is gone: it will push again
            log.debug("answering %s failed: %s", self.client_address[0], e)
            self.close_connection = True

    _body_read = False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Our own debug line per answer says it; the base's would print the query (a token)."""

    def log_message(self, format: str, *args: Any) -> None:
        """The base's own answers (a request line it cannot read): debug, any token hidden."""
        log.debug("events: %s: %s", self.client_address[0], _TOKEN.sub("token=***", format % args))


def _bearer(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


__all__ = ["MAX_BODY", "EventServer", "PushTarget", "start"]
