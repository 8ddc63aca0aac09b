"""A webhook receiver of the tests' own on 127.0.0.1: it records every request and gives the
answers it is told, in turn, the way a real receiver that is down, slow or fine would.

An answer is `(status, headers, body)`, HANG (read the request, answer nothing) or TRICKLE (a
byte at a time, never finishing the headers); when the answers run out, `default`. `verified`
checks a request as a receiver would, with the Standard Webhooks package (`standardwebhooks`)
and the CloudEvents parser (`cloudevents`): independent of the code that signs and builds.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from tests.support.localserver import LocalServer

HANG = "hang"
TRICKLE = "trickle"
# A Standard Webhooks secret: whsec_ and the base64 of 24 bytes.
SECRET = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTI0Yg=="


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def event(self, secret: str = SECRET) -> dict[str, Any]:
        """The CloudEvent, once its signature checks out (raises if it does not)."""
        Webhook(secret).verify(self.body, self.headers)
        return json.loads(self.body)


class Receiver(LocalServer):
    def __init__(
        self,
        answers: list[Any] | None = None,
        tls: ssl.SSLContext | None = None,
        default: Any = (204, {}, b""),
        host: str = "127.0.0.1",
    ) -> None:
        self.requests: list[Request] = []
        self.answers = list(answers or [])
        self.default = default
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Request(self.path, dict(self.headers.items()), body))
                answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                if answer == HANG:
                    receiver.release.wait(30)
                    return
                if answer == TRICKLE:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(50):
                        if receiver.release.wait(0.1):
                            return
                        self.wfile.write(b"X")
                        self.wfile.flush()
                    return
                status, headers, payload = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.host = host
        self.server = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def events(self, secret: str = SECRET) -> list[dict[str, Any]]:
        """Every request's CloudEvent, each one's signature checked."""
        return [r.event(secret) for r in list(self.requests)]

    def close(self) -> None:
        self.release.set()
        super().close()


__all__ = ["HANG", "SECRET", "TRICKLE", "Receiver", "Request"]
