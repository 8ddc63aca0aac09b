"""Outgoing webhooks (`videopipe.webhooks`), against real receivers on 127.0.0.1.

Real: http.server receivers in threads (one with TLS from a CA made here), the sockets between,
the Standard Webhooks verifier (`standardwebhooks`) and the CloudEvents parser (`cloudevents`)
as a receiver would run them: independent of the code that signs and builds. Injected, not
mocked: the clock and the sleep of `deliver` (so retries take no wall time), and the random
draw of the jitter. Whether a socket was opened is watched with an audit hook (PEP 578), which
sees every `socket.connect` and `socket.getaddrinfo` this process makes.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import shlex
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from videopipe.webhooks import (
    CONTENT_TYPE,
    DEFAULT_DENY,
    DEFAULT_EVENTS,
    ENV_ALLOW,
    ENV_DENY,
    MAKE_SECRET,
    MAX_DELAY,
    Attempt,
    DeliveryPolicy,
    DeliveryState,
    Guard,
    Notification,
    Outcome,
    Refused,
    Target,
    WebhookConfigError,
    cloud_event,
    decide,
    deliver,
    encode,
    next_delay,
    parse_events,
    post,
    retry_after_seconds,
    send,
    signature_headers,
)

from tests.support.ports import free_port
from tests.support.receiver import HANG, TRICKLE, Receiver, Request

SECRET = "whsec_" + base64.b64encode(b"videopipe test secret: 32 bytes!").decode()
SOURCE = "/namespaces/media/videosources/lectures"
PATH = "лекции/видео 1.mp4"
ETAG = '"9b2cf535f27731c974343645a3985328"'
WHEN = dt.datetime(2026, 12, 3, 6, 0, 5, tzinfo=dt.UTC)
FAST = DeliveryPolicy(timeout_seconds=2.0)


# -- watching sockets ------------------------------------------------------------------------


@dataclass
class Watch:
    connects: list[Any] = field(default_factory=list)
    lookups: list[Any] = field(default_factory=list)
    thread: int = field(default_factory=threading.get_ident)


_watches: list[Watch] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Kept cheap and never raising: it sees every audited event of the process, for good.
    if _watches and event in ("socket.connect", "socket.getaddrinfo"):
        for watch in _watches:
            if watch.thread == threading.get_ident():
                if event == "socket.connect":
                    watch.connects.append(args[1])
                else:
                    watch.lookups.append(args[0])


sys.addaudithook(_audit)


@contextmanager
def watching() -> Iterator[Watch]:
    """Every connect and name lookup this thread makes inside the block."""
    watch = Watch()
    _watches.append(watch)
    try:
        yield watch
    finally:
        _watches.remove(watch)


# -- receivers -------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(*answers: Any, tls: ssl.SSLContext | None = None) -> Receiver:
        made.append(Receiver(list(answers), tls))
        return made[-1]

    yield make
    for one in made:
        one.close()


class Clock:
    """`deliver`'s clock and sleep: sleeping records the delay and moves the clock, at once."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def event(outcome: Outcome = Outcome.SUCCEEDED, attempt: int = 1, **changes: Any) -> dict:
    args: dict[str, Any] = {
        "source": SOURCE,
        "path": PATH,
        "identity": ETAG,
        "attempt": attempt,
        "time": WHEN,
        "data": {
            "bucket": "media",
            "key": f"completed/{PATH}",
            "path": PATH,
            "attempt": attempt,
            "audioSeconds": 61.5,
            "language": "ru",
            "results": {"transcript": f"s3://media/results/{PATH}/transcript.txt"},
        },
    }
    args.update(changes)
    return cloud_event(outcome, **args)


def verified(request: Request, secret: str = SECRET) -> Any:
    return Webhook(secret).verify(request.body, request.headers)


# -- what is sent ----------------------------------------------------------------------------


def test_a_receiver_verifies_the_signature_and_parses_the_cloud_event(receiver) -> None:
    hook = receiver()
    sent = event()
    notification = Notification(f"{hook.url}/hooks/videopipe?team=1", SECRET)

    delivery = deliver(notification, sent, Guard(), FAST)

    assert (delivery.state, delivery.tries, delivery.last.status) == ("Delivered", 1, 204)
    (request,) = hook.requests
    assert request.path == "/hooks/videopipe?team=1"
    assert request.headers["Content-Type"] == CONTENT_TYPE
    assert request.headers["webhook-id"] == sent["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert verified(request)["subject"] == PATH
    ce = from_http_event(HTTPMessage(headers=request.headers, body=request.body))
    assert ce.get_specversion() == "1.0"
    assert ce.get_type() == "dev.videopipe.video.succeeded"
    assert (ce.get_source(), ce.get_id(), ce.get_subject()) == (SOURCE, sent["id"], PATH)
    assert ce.get_time() == WHEN
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_data() == sent["data"]
    assert ce.get_data()["results"]["transcript"].endswith("лекции/видео 1.mp4/transcript.txt")
    assert PATH.encode() in request.body  # UTF-8 as is, not \u-escaped
    assert request.body == encode(sent)
    # The verifier is a real one: it refuses a changed body and another secret.
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"succeeded", b"failed__"), request.headers)
    other = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
    with pytest.raises(WebhookVerificationError):
        verified(request, other)
    # The secret travels in no form.
    raw = SECRET.removeprefix("whsec_")
    for where in (request.body, repr(request.headers).encode(), repr(notification).encode()):
        assert raw.encode() not in where
        assert base64.b64decode(raw) not in where


def test_each_outcome_has_its_type() -> None:
    types = {o: event(o)["type"] for o in Outcome}
    assert types == {
        Outcome.STARTED: "dev.videopipe.video.started",
        Outcome.SUCCEEDED: "dev.videopipe.video.succeeded",
        Outcome.FAILED: "dev.videopipe.video.failed",
    }
    assert [str(o) for o in Outcome] == ["Started", "Succeeded", "Failed"]
    assert frozenset({Outcome.SUCCEEDED, Outcome.FAILED}) == DEFAULT_EVENTS
    assert parse_events(["Failed", "Started"]) == {Outcome.FAILED, Outcome.STARTED}
    with pytest.raises(WebhookConfigError, match=r"'succeeded'.*Started, Succeeded, Failed"):
        parse_events(["succeeded"])


def test_the_id_is_the_same_for_the_same_outcome_of_the_same_attempt_of_the_same_upload() -> None:
    first = event()
    assert event()["id"] == first["id"]
    later = WHEN + dt.timedelta(hours=1)
    assert event(time=later, data={"other": 1})["id"] == first["id"]
    others = [
        event(attempt=2),
        event(Outcome.FAILED),
        event(identity='"another-etag"'),
        event(path="лекции/видео 2.mp4"),
        event(source="videopipe-run://laptop/home/me/videos"),
    ]
    ids = {first["id"], *(e["id"] for e in others)}
    assert len(ids) == 1 + len(others)
    assert first["time"] == "2026-12-03T06:00:05Z"
    with pytest.raises(ValueError, match="timezone"):
        event(time=dt.datetime(2026, 12, 3, 6, 0))


# -- retries ---------------------------------------------------------------------------------


def test_500_500_200_is_delivered_on_the_third_try_with_one_webhook_id(receiver) -> None:
    hook = receiver((500, {}, b"oops"), (500, {}, b"oops"), (200, {}, b"ok"))
    clock = Clock()
    sent = event(Outcome.FAILED)

    delivery = deliver(
        Notification(hook.url, SECRET), sent, Guard(), FAST, sleep=clock.sleep, clock=clock
    )

    assert (delivery.state, delivery.tries) == (DeliveryState.DELIVERED, 3)
    assert len(hook.requests) == 3
    assert {r.headers["webhook-id"] for r in hook.requests} == {sent["id"]}
    for request in hook.requests:
        assert verified(request)["id"] == sent["id"]  # each try signed for its own time
    first, second = clock.slept
    assert 0.75 <= first <= 1.25
    assert 1.5 <= second <= 2.5


def test_429_with_retry_after_waits_what_the_receiver_asks(receiver) -> None:
    hook = receiver((429, {"Retry-After": "2"}, b""), (204, {}, b""))
    clock = Clock()

    delivery = deliver(
        Notification(hook.url, SECRET), event(), Guard(), FAST, sleep=clock.sleep, clock=clock
    )

    assert (delivery.state, delivery.tries, clock.slept) == (DeliveryState.DELIVERED, 2, [2.0])


def test_retry_after_is_a_minimum_and_capped() -> None:
    for draw in (0.0, 0.5, 1.0):
        assert next_delay(1, 2.0, rand=lambda d=draw: d) == 2.0
    assert next_delay(4, 2.0, rand=lambda: 0.5) == 8.0  # the backoff is already longer
    assert next_delay(1, 3600.0, rand=lambda: 0.5) == MAX_DELAY == 300.0
    assert [next_delay(t, None, rand=lambda: 0.5) for t in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert next_delay(1, None, rand=lambda: 0.0) == 0.75
    assert next_delay(1000, None, rand=lambda: 1.0) == MAX_DELAY
    now = time.time()
    http_date = format_datetime(dt.datetime.fromtimestamp(now + 30, dt.UTC), usegmt=True)
    assert retry_after_seconds(http_date, now) == pytest.approx(30, abs=1)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("soon", now) is None


def test_decide_is_pure_and_gives_up_past_the_window() -> None:
    policy = DeliveryPolicy(timeout_seconds=10, give_up_after_seconds=60)
    busy = Attempt("retry", 503, None, "receiver answered 503 Service Unavailable")
    half = {"rand": lambda: 0.5}

    assert decide(0, 1, Attempt("delivered", 200), 1, policy).state == "Delivered"
    gone = decide(0, 1, Attempt("give_up", 404, None, "receiver answered 404 Not Found"), 1, policy)
    assert (gone.state, gone.reason) == ("Abandoned", "receiver answered 404 Not Found")
    again = decide(1000, 1010, busy, 3, policy, **half)
    assert (again.state, again.retry_at) == ("Retrying", 1014)
    late = decide(1000, 1050, busy, 5, policy, **half)  # 1050 + 16 is past 1060
    assert late.state == "Abandoned"
    assert late.reason == "gave up after 5 tries in 50 s: receiver answered 503 Service Unavailable"


def test_400_gives_up_at_once(receiver) -> None:
    hook = receiver((400, {}, b"unknown field 'audioSeconds'\x1b[31m"))
    clock = Clock()

    delivery = deliver(
        Notification(hook.url, SECRET), event(), Guard(), FAST, sleep=clock.sleep, clock=clock
    )

    assert (delivery.state, delivery.tries, clock.slept) == (DeliveryState.ABANDONED, 1, [])
    assert delivery.last.status == 400
    assert delivery.reason == "receiver answered 400 Bad Request: unknown field 'audioSeconds' [31m"
    assert len(hook.requests) == 1


def test_a_redirect_is_not_followed(receiver) -> None:
    elsewhere = receiver()
    hook = receiver((302, {"Location": f"{elsewhere.url}/inbox"}, b""))
    clock = Clock()

    delivery = deliver(
        Notification(hook.url, SECRET), event(), Guard(), FAST, sleep=clock.sleep, clock=clock
    )

    assert (delivery.state, delivery.tries, delivery.last.status) == ("Abandoned", 1, 302)
    assert "redirects are not followed" in delivery.reason
    assert f"{elsewhere.url}/inbox" in delivery.reason
    assert len(hook.requests) == 1
    assert elsewhere.requests == []


def test_a_receiver_that_never_answers_times_out_then_is_abandoned(receiver) -> None:
    hook = receiver(HANG, HANG, HANG, HANG)
    target = Guard().check(hook.url)
    started = time.monotonic()

    attempt = send(target, {}, b"{}", timeout=0.5)

    took = time.monotonic() - started
    assert 0.45 <= took < 1.5, took
    assert attempt == Attempt(
        "retry", None, None, f"no answer from {target.ip}:{hook.port} within 0.5 s"
    )

    # Tries at 0, ~1 and ~3 s; the next would come after the 4 s window.
    clock = Clock()
    policy = DeliveryPolicy(timeout_seconds=0.5, give_up_after_seconds=4)
    delivery = deliver(
        Notification(hook.url, SECRET), event(), Guard(), policy, sleep=clock.sleep, clock=clock
    )
    assert (delivery.state, delivery.tries) == (DeliveryState.ABANDONED, 3)
    assert delivery.reason.startswith("gave up after 3 tries")
    assert delivery.reason.endswith("within 0.5 s")
    assert len(hook.requests) == 1 + 3


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_at_the_timeout(receiver) -> None:
    hook = receiver(TRICKLE)
    started = time.monotonic()

    attempt = send(Guard().check(hook.url), {}, b"{}", timeout=0.5)

    assert time.monotonic() - started < 1.5  # each byte came well within 0.5 s
    assert (attempt.outcome, attempt.error.endswith("within 0.5 s")) == ("retry", True)


def test_nothing_listening_is_a_retry_that_says_so() -> None:
    port = free_port()
    attempt = send(Guard().check(f"http://127.0.0.1:{port}/"), {}, b"{}", timeout=2)
    assert attempt == Attempt("retry", None, None, f"connection refused by 127.0.0.1:{port}")


# -- where a POST may go ---------------------------------------------------------------------

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://0.0.0.0:80/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64's way to 169.254.169.254
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "https://255.255.255.255/",
    "file:///etc/passwd",
    "gopher://x",
    "http://user:password@127.0.0.1:1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls_open_no_socket(url: str) -> None:
    notification = Notification(url, SECRET)
    with watching() as watch:
        with pytest.raises(Refused):
            Guard().check(url)
        attempt = post(notification, b"{}", "id", Guard(), timeout=1, timestamp=0)
        delivery = deliver(notification, event(), Guard(), FAST, sleep=pytest.fail)
    assert (attempt.outcome, attempt.error.startswith("refused: ")) == ("give_up", True)
    assert (delivery.state, delivery.tries) == (DeliveryState.ABANDONED, 1)
    assert watch.connects == []
    assert watch.lookups == []  # IP literals and bad schemes need no lookup either


def test_the_connection_goes_to_the_checked_address_with_no_second_lookup(receiver) -> None:
    hook = receiver()
    target = Target("localhost", hook.port, "127.0.0.1", "http", "/in")

    with watching() as watch:
        attempt = send(target, {"webhook-id": "x"}, b"{}", timeout=2)

    assert attempt.outcome == "delivered"
    assert watch.connects == [("127.0.0.1", hook.port)]  # the hook does see connects
    assert watch.lookups == []
    assert hook.requests[0].headers["Host"] == f"localhost:{hook.port}"


def test_the_resolved_address_is_checked_not_the_name(receiver) -> None:
    hook = receiver()
    loopback = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    guard = Guard(DEFAULT_DENY + loopback)
    url = f"http://localhost:{hook.port}/"

    with watching() as watch:
        with pytest.raises(Refused, match=r"localhost resolves to .*in the denied network"):
            guard.check(url)
        delivery = deliver(Notification(url, SECRET), event(), guard, FAST, sleep=pytest.fail)

    assert delivery.state == DeliveryState.ABANDONED
    assert "localhost" in watch.lookups  # the name was looked up, and its address refused
    assert watch.connects == []
    assert hook.requests == []
    assert Guard().check(url).ip in ("127.0.0.1", "::1")  # the same URL, undenied, passes


def test_the_allowlist_lets_a_denied_host_through_and_only_its_hosts(receiver) -> None:
    hook = receiver()
    env = {ENV_DENY: "127.0.0.0/8, ::1/128", ENV_ALLOW: "127.0.0.1"}
    guard = Guard.from_env(environ=env)

    delivery = deliver(Notification(hook.url, SECRET), event(), guard, FAST)

    assert delivery.state == DeliveryState.DELIVERED
    assert len(hook.requests) == 1
    with watching() as watch, pytest.raises(Refused, match=ENV_ALLOW):
        guard.check(f"http://localhost:{hook.port}/")
    assert (watch.lookups, watch.connects) == ([], [])
    with pytest.raises(Refused, match=r"denied network 127\.0\.0\.0/8"):
        Guard.from_env(environ={ENV_DENY: "127.0.0.0/8"}).check(hook.url)


def test_an_allowlisted_host_is_still_refused_at_a_metadata_address() -> None:
    guard = Guard.from_env(environ={ENV_ALLOW: "169.254.169.254,[fd00:ec2::254]"})
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"):
        with watching() as watch, pytest.raises(Refused, match="denied network"):
            guard.check(url)
        assert watch.connects == []


def test_from_env_adds_the_cluster_ranges_and_the_api_server() -> None:
    env = {ENV_DENY: "10.96.0.0/12, 10.244.0.0/16", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    guard = Guard.from_env(["192.168.7.0/24"], environ=env)
    with watching() as watch:  # IP literals: checked without a lookup or a connect
        for url in ("http://10.96.0.10/", "http://10.244.3.4:8080/", "http://10.0.0.1:443/"):
            with pytest.raises(Refused):
                guard.check(url)
        with pytest.raises(Refused):
            guard.check("http://192.168.7.7/")
        assert guard.check("https://10.0.0.2/x?y=1") == Target(
            "10.0.0.2", 443, "10.0.0.2", "https", "/x?y=1"
        )
    assert (watch.lookups, watch.connects) == ([], [])
    ipv6 = Guard.from_env(environ={"KUBERNETES_SERVICE_HOST": "fd00::1"})
    with pytest.raises(Refused, match="fd00::1/128"):
        ipv6.check("http://[fd00::1]/")
    with pytest.raises(WebhookConfigError, match=r"'10\.0\.0\.0/33' is not a CIDR"):
        Guard.from_env(environ={ENV_DENY: "10.0.0.0/33"})


# -- https -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for `localhost` only, and the CA file that signed it."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "videopipe test CA")])
    ca = cert("videopipe test CA", ca_key, ca_name, ca_key, ca=True)
    server = cert("localhost", key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return context, folder / "ca.pem"


def test_https_checks_the_certificate_against_the_urls_host(receiver, tls_pair) -> None:
    server_tls, ca = tls_pair
    names: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, ctx: names.append(name)
    hook = receiver(tls=server_tls)
    trusted = ssl.create_default_context(cafile=str(ca))

    with watching() as watch:
        ok = send(
            Target("localhost", hook.port, "127.0.0.1", "https", "/"), {}, b"{}", 2, tls=trusted
        )
    assert ok.outcome == "delivered"
    assert names == ["localhost"]  # SNI names the host, while the socket went to the IP
    assert (watch.connects, watch.lookups) == ([("127.0.0.1", hook.port)], [])

    by_ip = send(
        Target("127.0.0.1", hook.port, "127.0.0.1", "https", "/"), {}, b"{}", 2, tls=trusted
    )
    assert by_ip.outcome == "retry"
    assert by_ip.error.startswith("TLS certificate of 127.0.0.1 refused")
    system = send(Target("localhost", hook.port, "127.0.0.1", "https", "/"), {}, b"{}", 2)
    assert system.error.startswith("TLS certificate of localhost refused")  # our CA is not trusted
    assert len(hook.requests) == 1


# -- the secret ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    ["whsec_not base64!", "hunter2", "whsec_", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_bad_secret_says_what_form_is_expected_and_how_to_make_one(secret: str) -> None:
    with pytest.raises(WebhookConfigError) as raised:
        Notification("http://127.0.0.1:9/", secret)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert "whsec_<base64" in message
    assert MAKE_SECRET in message
    if len(secret) > len("whsec_"):
        assert secret not in message  # a secret is not echoed into logs
    with pytest.raises(WebhookConfigError):
        signature_headers(secret, "id", 0, b"{}")


def test_the_command_the_message_gives_makes_a_secret_that_works() -> None:
    command = shlex.split(MAKE_SECRET)
    made = subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, check=True
    )
    secret = made.stdout.strip()
    timestamp = int(time.time())

    headers = signature_headers(secret, "msg_1", timestamp, encode(event()))

    assert Notification("http://127.0.0.1:9/", secret).secret == secret
    assert Webhook(secret).verify(encode(event()), headers)["id"] == event()["id"]
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(timestamp)
