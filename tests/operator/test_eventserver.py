"""The push receiver over real HTTP on 127.0.0.1, with the real hint store behind it.

What a store's webhook sees: 2xx only once the hint is recorded, 401/404/405/411/413/400 for what
it sent wrong (and then nothing recorded), 503 when recording failed, and every answer to a
burst of pushes from several connections at once.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import pytest
from prometheus_client import REGISTRY
from videopipe.layout import Layout
from videopipe_operator import eventserver
from videopipe_operator.eventserver import PushTarget
from videopipe_operator.hints import Hints

from tests.support.ports import free_port

TOKEN = "s3cret-token-value"
SOURCE = ("media", "talks")
PATH = "/events/media/talks"


def records(*keys: str, bucket: str = "videos") -> bytes:
    """MinIO's webhook body for these keys."""
    recs = [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(k), "size": 1}},
        }
        for k in keys
    ]
    return json.dumps({"EventName": "s3:ObjectCreated:Put", "Records": recs}).encode()


@dataclass
class Receiver:
    server: eventserver.EventServer
    hints: Hints
    calls: list[tuple[str, str, set[str]]]

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)

    def post(
        self, body: bytes, path: str = PATH, token: str | None = TOKEN, **headers: str
    ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        conn = self.connect()
        try:
            if token is not None:
                headers.setdefault("Authorization", f"Bearer {token}")
            headers.setdefault("Content-Type", "application/json")
            conn.request("POST", path, body=body, headers=headers)
            return read(conn.getresponse())
        finally:
            conn.close()


def read(response: http.client.HTTPResponse) -> tuple[int, dict[str, Any], Any]:
    data = response.read()
    return response.status, json.loads(data) if data else {}, response


def rejected(reason: str, source: str = "media/talks") -> float:
    labels = {"source": source, "kind": "http", "reason": reason}
    return REGISTRY.get_sample_value("videopipe_events_rejected_total", labels) or 0.0


def start(max_body: int = eventserver.MAX_BODY) -> Receiver:
    hints = Hints()
    calls: list[tuple[str, str, set[str]]] = []
    lock = threading.Lock()
    targets = {
        SOURCE: PushTarget(TOKEN, "videos", Layout("talks")),
        ("media", "broken"): PushTarget(TOKEN, "videos", Layout()),
    }

    def resolve(namespace: str, name: str) -> PushTarget:
        return targets[(namespace, name)]  # KeyError is a LookupError

    def hint(namespace: str, name: str, keys: set[str]) -> None:
        if name == "broken":
            raise RuntimeError("the hint store is gone")
        with lock:
            calls.append((namespace, name, set(keys)))
        hints.add((namespace, name), keys)

    server = eventserver.start(free_port(), resolve, hint, host="127.0.0.1", max_body=max_body)
    return Receiver(server, hints, calls)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start()
    try:
        yield r
    finally:
        r.server.close()


def test_the_right_token_records_the_keys_then_answers(receiver: Receiver) -> None:
    body = records("talks/pending/лекция 1.mp4", "talks/results/x.json", "talks/pending/a+b.mp4")
    status, doc, _ = receiver.post(body)
    assert (status, doc) == (200, {"accepted": 2})
    assert receiver.hints.take(SOURCE)[0] == {"talks/pending/лекция 1.mp4", "talks/pending/a+b.mp4"}


def test_a_token_in_the_query_is_accepted_and_never_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="videopipe_operator.eventserver")
    status, _, _ = receiver.post(
        records("talks/pending/q.mp4"), path=f"{PATH}?token={TOKEN}", token=None
    )
    assert status == 200
    assert receiver.hints.take(SOURCE)[0] == {"talks/pending/q.mp4"}
    assert "POST /events/media/talks" in caplog.text
    assert TOKEN not in caplog.text


def test_nothing_to_hint_answers_without_calling_hint(receiver: Receiver) -> None:
    status, doc, _ = receiver.post(records("talks/pending/a.mp4", bucket="other"))
    assert (status, doc) == (200, {"accepted": 0})
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("headers", "token", "error"),
    [
        ({}, None, None),
        ({}, "wrong-token", "invalid_token"),
        ({"Authorization": f"Basic {TOKEN}"}, None, None),
        ({}, "", None),
    ],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
def test_a_missing_or_wrong_token_is_401_and_records_nothing(
    receiver: Receiver, headers: dict[str, str], token: str | None, error: str | None
) -> None:
    before = rejected("Unauthorized")
    status, doc, response = receiver.post(records("talks/pending/a.mp4"), token=token, **headers)
    assert status == 401
    challenge = response.getheader("WWW-Authenticate")
    assert challenge.startswith("Bearer ")
    if error:
        assert f'error="{error}"' in challenge
    assert TOKEN not in json.dumps(doc)
    assert receiver.calls == [] and not receiver.hints.pending(SOURCE)
    assert rejected("Unauthorized") == before + 1


def test_a_body_over_the_limit_is_413_unread(receiver: Receiver) -> None:
    conn = receiver.connect()
    try:
        conn.putrequest("POST", PATH)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Content-Length", str(eventserver.MAX_BODY + 1))
        conn.endheaders()  # no body sent: the answer must come without reading one
        status, doc, response = read(conn.getresponse())
    finally:
        conn.close()
    assert status == 413 and "over 1048576 bytes" in doc["error"]
    assert response.getheader("Connection") == "close"
    assert receiver.calls == [] and not receiver.hints.pending(SOURCE)


def test_a_whole_body_over_a_small_limit_is_413() -> None:
    small = start(max_body=64)
    try:
        before = rejected("TooLarge")
        status, _, _ = small.post(records("talks/pending/a.mp4"))
        assert status == 413
        assert small.calls == []
        assert rejected("TooLarge") == before + 1
    finally:
        small.server.close()


def test_no_content_length_is_411(receiver: Receiver) -> None:
    conn = receiver.connect()
    try:
        conn.putrequest("POST", PATH)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()  # the chunks would follow; the answer comes first
        status, doc, response = read(conn.getresponse())
    finally:
        conn.close()
    assert status == 411 and "Content-Length" in doc["error"]
    assert response.getheader("Connection") == "close"
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "not JSON"),
        (b'{"something": "else"}', "unknown event shape"),
        (b'{"Records": [{"s3": {}}]}', "Records[0] has no 'eventName'"),
    ],
)
def test_a_malformed_body_is_400_saying_why(receiver: Receiver, raw: bytes, says: str) -> None:
    status, doc, response = receiver.post(raw)
    assert status == 400
    assert response.getheader("Content-Type") == "application/json"
    assert says in doc["error"]
    assert receiver.calls == []


@pytest.mark.parametrize(
    "path",
    [
        "/events/media/nosuch",
        "/events/other/talks",
        "/events/Media/talks",
        "/events/media/talks/x",
        "/",
    ],
)
def test_an_unknown_source_or_path_is_404(receiver: Receiver, path: str) -> None:
    status, doc, _ = receiver.post(records("talks/pending/a.mp4"), path=path)
    assert status == 404 and doc["error"]
    assert receiver.calls == []


def test_a_trailing_slash_names_the_same_source(receiver: Receiver) -> None:
    status, _, _ = receiver.post(records("talks/pending/a.mp4"), path=f"{PATH}/")
    assert status == 200 and receiver.calls == [("media", "talks", {"talks/pending/a.mp4"})]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_methods_are_405(receiver: Receiver, method: str) -> None:
    conn = receiver.connect()
    try:
        conn.request(method, PATH, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 405 and response.getheader("Allow") == "POST"


def test_a_failing_hint_is_503(receiver: Receiver) -> None:
    status, doc, _ = receiver.post(records("pending/a.mp4"), path="/events/media/broken")
    assert status == 503 and doc == {"error": "try again later"}


def test_a_burst_of_pushes_is_all_answered_and_recorded(receiver: Receiver) -> None:
    per_thread, threads = 125, 8
    statuses: list[int] = []
    lock = threading.Lock()

    def pusher(n: int) -> None:
        conn = receiver.connect()  # one keep-alive connection per sender, as MinIO does
        try:
            for i in range(per_thread):
                body = records(f"talks/pending/{n}/{i}.mp4", "talks/pending/same.mp4")
                conn.request("POST", PATH, body=body, headers={"Authorization": f"Bearer {TOKEN}"})
                status, _, _ = read(conn.getresponse())
                with lock:
                    statuses.append(status)
        finally:
            conn.close()

    workers = [threading.Thread(target=pusher, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert statuses == [200] * (per_thread * threads)
    keys, tickets = receiver.hints.take(SOURCE)
    assert len(keys) == per_thread * threads + 1  # every key once, the shared one coalesced
    assert len(tickets) == 1


def test_a_body_shorter_than_its_length_is_400(receiver: Receiver) -> None:
    with socket.create_connection(("127.0.0.1", receiver.server.port), timeout=10) as sock:
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"Records": []}')
        sock.shutdown(socket.SHUT_WR)  # the sender gives up after 15 of 100 bytes
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and b"ended early" in answer
    assert receiver.calls == []


def test_another_method_on_another_path_is_404(receiver: Receiver) -> None:
    conn = receiver.connect()
    try:
        conn.request("GET", "/metrics")
        status, doc, response = read(conn.getresponse())
    finally:
        conn.close()
    assert status == 404 and "/events/<namespace>/<source>" in doc["error"]
    assert response.getheader("Allow") is None


def test_a_load_balancer_health_check_is_answered(receiver: Receiver) -> None:
    conn = receiver.connect()
    try:
        conn.request("GET", "/healthz")
        status, doc, _ = read(conn.getresponse())
    finally:
        conn.close()
    assert status == 200 and doc == {"status": "receiving"}
    assert receiver.calls == []
