"""Outgoing webhooks: tell a user's URL that a video started, succeeded or failed.

One job: turn a video's outcome into a signed HTTP POST that reaches only where it may, and say
what to do after each try. The standard library only (the shared package depends on boto3 alone).

- The message is a CloudEvents 1.0 event in structured mode (`cloud_event`, `encode`): a format
  receivers already parse. Its `id` is derived from what it is about, so a retry, or the same
  event sent again after a crash, carries the same id and a receiver can drop duplicates.
- It is signed as Standard Webhooks (https://www.standardwebhooks.com/) sign
  (`signature_headers`): HMAC-SHA256 over `id.timestamp.body`, with the event id as webhook-id.
- `Guard` keeps the POST off addresses a receiver URL must never name: cloud metadata, link-local,
  and what the operator adds (the cluster's own ranges). The name is resolved once, the addresses
  checked, and the connection made to the checked address, so DNS cannot rebind it in between.
- `send` makes one try and classifies the answer; `next_delay` and `decide` are the pure retry
  rules. State (tries, when next) is the caller's: the operator keeps it in a status, across
  restarts. `deliver` is the in-process loop for `videopipe run`, which has nowhere to keep it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import random
import socket
import ssl
import threading
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import quote, urlsplit


class Outcome(StrEnum):
    """What happened to a video; the words users write in a webhook's `events`."""

    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


DEFAULT_EVENTS: frozenset[Outcome] = frozenset({Outcome.SUCCEEDED, Outcome.FAILED})
EVENT_TYPE_PREFIX = "dev.videopipe.video."
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "videopipe-webhooks/1"
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # Standard Webhooks: keys SHOULD be 24 to 64 bytes
MAKE_SECRET = (
    "python3 -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(24)).decode())\""
)
MAX_ANSWER_BYTES = 4096  # of a receiver's answer body: it is not trusted to be small
MAX_SHOWN = 200  # characters of a receiver's answer quoted in an error message

BASE_DELAY = 1.0
MAX_DELAY = 300.0  # 5 min: between tries, and the most a Retry-After is honoured for

ENV_DENY = "VIDEOPIPE_WEBHOOK_DENY_CIDRS"
ENV_ALLOW = "VIDEOPIPE_WEBHOOK_ALLOW_HOSTS"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254) among it
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS's IPv6 metadata endpoint
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host
        "::/128",  # unspecified
        "224.0.0.0/4",  # multicast
        "ff00::/8",  # IPv6 multicast
        "255.255.255.255/32",  # broadcast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # NAT64 carries an IPv4 address in its low bits


class WebhookConfigError(ValueError):
    """A webhook's configuration cannot work (bad secret, unknown event, bad CIDR)."""


class Refused(Exception):
    """The guard will not send to this URL; the message says why."""


class Unresolved(Exception):
    """The URL's host name did not resolve now; it may later, so this is worth a retry."""


# -- the event -------------------------------------------------------------------------------


def parse_events(names: Iterable[str]) -> frozenset[Outcome]:
    """The outcomes a user's `events: [...]` names; an unknown word is a config error."""
    chosen = set()
    for name in names:
        try:
            chosen.add(Outcome(name))
        except ValueError:
            known = ", ".join(o.value for o in Outcome)
            raise WebhookConfigError(
                f"unknown webhook event {name!r}: the events are {known}"
            ) from None
    return frozenset(chosen)


def event_id(outcome: Outcome, *, source: str, path: str, identity: str, attempt: int) -> str:
    """The same for the same outcome of the same attempt of the same upload, whoever sends it."""
    parts = json.dumps([source, path, identity, attempt, str(outcome)], ensure_ascii=False)
    return hashlib.sha256(parts.encode()).hexdigest()[:32]


def cloud_event(
    outcome: Outcome,
    *,
    source: str,
    path: str,
    identity: str,
    attempt: int,
    data: Mapping[str, Any],
    time: datetime,
) -> dict[str, Any]:
    """A CloudEvents 1.0 event (structured mode) saying `outcome` of the video at `path`.

    `source` is a URI-reference naming where the video came from: the VideoSource's API path for
    the operator, the bucket or folder URI (`s3://bucket/prefix`, `file:///...`) for the runner;
    `identity` is the upload's ETag; `time` is when the outcome happened (timezone-aware).
    `data` is the caller's, sent as is; the keys receivers are told to expect (absent when they
    do not apply):

    - `bucket`, `key`, `path`: where the video is (`path` is relative to the source's prefix);
    - `attempt`: which attempt this is (1 for the first);
    - `reason`, `message`: why it failed (Failed) or started (Started), a `videopipe.reasons` word;
    - `audioSeconds`, `language`, `processingSeconds`: what the worker found and took;
    - `results`: a mapping of result name (`transcript`, `srt`, ...) to its URI.

    Never put a credential in `data`: receivers log bodies.
    """
    if time.tzinfo is None:
        raise ValueError("cloud_event needs a timezone-aware time (RFC 3339 requires an offset)")
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE_PREFIX + outcome.value.lower(),
        "source": source,
        "id": event_id(outcome, source=source, path=path, identity=identity, attempt=attempt),
        "subject": path,
        "time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; non-ASCII paths stay readable rather than \\u-escaped."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- signing ---------------------------------------------------------------------------------


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, `whsec_<base64>`; anything else is refused."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_KEY_BYTES:
        if not encoded:
            problem = "is empty"
        elif not key:
            problem = "is not base64"
        else:
            problem = f"holds {len(key)} bytes, under {MIN_KEY_BYTES}"
        raise WebhookConfigError(
            f"the webhook secret {problem}: it must be the Standard Webhooks form "
            f"whsec_<base64 of {MIN_KEY_BYTES} to 64 random bytes>; make one with: {MAKE_SECRET}"
        )
    return key


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers: the id, the time of this try, and v1 HMAC-SHA256 of both+body."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


@dataclass(frozen=True)
class Notification:
    """One user-configured webhook: where, with which secret, for which outcomes."""

    url: str
    secret: str = field(repr=False)  # never in a log line
    events: frozenset[Outcome] = DEFAULT_EVENTS

    def __post_init__(self) -> None:
        secret_key(self.secret)  # a bad secret is said when configured, not at the first video

    def wants(self, outcome: Outcome) -> bool:
        return outcome in self.events


# -- where a POST may go ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL: `ip` is the address that will be connected to, `host` what is named."""

    host: str
    port: int
    ip: str
    scheme: Literal["http", "https"]
    path_and_query: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port} ({self.ip})"


def _networks(cidrs: Iterable[str], where: str) -> list[Network]:
    found = []
    for cidr in cidrs:
        if cidr.strip():
            try:
                found.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                raise WebhookConfigError(f"{where}: {cidr.strip()!r} is not a CIDR") from None
    return found


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _embedded(addr: Address) -> list[Address]:
    """The address and any IPv4 address an IPv6 one carries to the same place."""
    found: list[Address] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            found.append(addr.ipv4_mapped)
        if addr in _NAT64:
            found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


@dataclass(frozen=True)
class Guard:
    """Which receiver addresses are refused (`deny_networks`), and the allowlist.

    When `allow_hosts` is not empty it is an allowlist: only those hosts (names or IPs, as the
    URL writes them) are sent to, and they skip the operator's own deny list (the cluster's
    ranges, the API server): an admin who lists a host vouches for it. `DEFAULT_DENY` (link-local
    and metadata addresses, multicast...) still applies to them: no receiver lives there, and a
    name that resolves there has been turned against us. Loopback and private ranges are not denied
    by default (a receiver on the same machine or network is normal); the operator adds its
    cluster's ranges with `from_env`.
    """

    deny_networks: tuple[Network, ...] = DEFAULT_DENY
    allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_env(
        cls, extra_deny: Iterable[str] = (), environ: Mapping[str, str] | None = None
    ) -> Guard:
        """DEFAULT_DENY, `extra_deny`, `$VIDEOPIPE_WEBHOOK_DENY_CIDRS` (comma-separated CIDRs,
        such as the cluster's service and pod ranges) and the API server
        (`$KUBERNETES_SERVICE_HOST`, when it is an IP); the allowlist from
        `$VIDEOPIPE_WEBHOOK_ALLOW_HOSTS` (comma-separated host names or IPs)."""
        env = os.environ if environ is None else environ
        deny = list(DEFAULT_DENY) + _networks(extra_deny, "extra_deny")
        deny += _networks(env.get(ENV_DENY, "").split(","), ENV_DENY)
        api = env.get("KUBERNETES_SERVICE_HOST", "").strip()
        if api:
            # Kubernetes always sets an IP; a name here is no address to deny.
            with contextlib.suppress(ValueError):
                deny.append(ipaddress.ip_network(api))
        allow = frozenset(_normal_host(h) for h in env.get(ENV_ALLOW, "").split(",") if h.strip())
        return cls(tuple(deny), allow)

    def check(self, url: str) -> Target:
        """The target `url` names, if it may be sent to; `Refused` (or `Unresolved`) if not.

        Nothing is connected to here; the only network use is the name lookup.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise Refused(f"{url!r}: only http and https URLs are sent to")
        if parts.username is not None or parts.password is not None:
            raise Refused(f"{parts.hostname}: a user:password@ in the URL is not sent")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Refused(f"{url!r}: the port is not a number from 0 to 65535") from None
        host = _normal_host(parts.hostname or "")
        if not host:
            raise Refused(f"{url!r} names no host")
        allowed = host in self.allow_hosts
        if self.allow_hosts and not allowed:
            raise Refused(f"{host} is not in the webhook allowlist (${ENV_ALLOW})")
        addresses = _resolve(host, port)
        networks = DEFAULT_DENY if allowed else self.deny_networks
        for addr in addresses:
            for seen in _embedded(addr):
                denied = next((n for n in networks if seen in n), None)
                if denied is not None:
                    raise Refused(
                        f"{host} resolves to {addr}, in the denied network {denied}: "
                        "webhooks are not sent there"
                    )
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
        query = "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?") if parts.query else ""
        kind: Literal["http", "https"] = "https" if scheme == "https" else "http"
        return Target(host, port, str(addresses[0]), kind, path + query)


def _resolve(host: str, port: int) -> list[Address]:
    """Every address `host` has, in the order a connection would try them."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(f"{host} did not resolve: {exc}") from None
    # An IPv6 answer may carry a zone ("fe80::1%eth0"); the zone is no part of the address.
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise Unresolved(f"{host} resolved to no address")
    return list(dict.fromkeys(found))


# -- one try ---------------------------------------------------------------------------------


def _open(ip: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to exactly `ip`: no name is looked up on the way."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to the checked address; the Host header still names the URL's host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.ip = target.ip
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        self.raw = self.sock = _open(self.ip, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the checked address; SNI and the certificate check use the URL's host name."""

    def __init__(self, target: Target, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self.ip = target.ip
        self.tls = tls
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        self.raw = _open(self.ip, self.port, self.timeout)
        self.sock = self.tls.wrap_socket(self.raw, server_hostname=self.host)


AttemptOutcome = Literal["delivered", "retry", "give_up"]


@dataclass(frozen=True)
class Attempt:
    """How one try went: `error` is for people (a status line, a log), empty when delivered."""

    outcome: AttemptOutcome
    status: int | None = None
    retry_after: float | None = None
    error: str = ""


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A `Retry-After` header (seconds, or an HTTP-date) as seconds from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _shown(raw: bytes) -> str:
    """A receiver's answer, short and printable, to quote in an error message."""
    text = raw.decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:MAX_SHOWN] + ("..." if len(text) > MAX_SHOWN else "")


def _status_line(status: int, reason: str) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} {_shown(reason.encode())[:60]}".strip()


def send(
    target: Target,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
    *,
    tls: ssl.SSLContext | None = None,
) -> Attempt:
    """POST `body` once to `target`, waiting at most `timeout` seconds in all; never raises.

    `tls` replaces the system's trust store (a private CA), for https only.
    """
    if target.scheme == "https":
        conn: _PinnedHTTP | _PinnedHTTPS = _PinnedHTTPS(
            target, timeout, tls or ssl.create_default_context()
        )
    else:
        conn = _PinnedHTTP(target, timeout)
    timed_out = threading.Event()

    def cut() -> None:
        # A receiver that answers a byte at a time would outlast every per-read timeout.
        timed_out.set()
        if conn.raw is not None:
            with contextlib.suppress(OSError):
                conn.raw.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    where = f"{target.ip}:{target.port}"
    try:
        conn.request("POST", target.path_and_query, body=body, headers=dict(headers))
        answer = conn.getresponse()
        status = answer.status
        snippet = answer.read(MAX_ANSWER_BYTES)
        location = answer.getheader("Location")
        retry_after = retry_after_seconds(answer.getheader("Retry-After"), _time.time())
    except ssl.SSLCertVerificationError as exc:
        return Attempt("retry", error=f"TLS certificate of {target.host} refused: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        if timed_out.is_set() or isinstance(exc, TimeoutError):
            return Attempt("retry", error=f"no answer from {where} within {timeout:g} s")
        if isinstance(exc, ConnectionRefusedError):
            return Attempt("retry", error=f"connection refused by {where}")
        return Attempt("retry", error=f"connection to {where} failed: {exc or type(exc).__name__}")
    finally:
        timer.cancel()
        conn.close()
    if timed_out.is_set():  # the cut ends an answer early, which can still parse as whole
        return Attempt("retry", error=f"no answer from {where} within {timeout:g} s")
    line = _status_line(status, answer.reason)
    if 200 <= status < 300:
        return Attempt("delivered", status)
    if status in (408, 429) or status >= 500:
        return Attempt("retry", status, retry_after, f"receiver answered {line}")
    if 300 <= status < 400:
        return Attempt(
            "give_up",
            status,
            error=f"receiver answered {line} to {_shown((location or '?').encode())}: "
            "redirects are not followed; set the webhook URL to the final address",
        )
    said = _shown(snippet)
    error = f"receiver answered {line}: {said}" if said else f"receiver answered {line}"
    return Attempt("give_up", status, error=error)


# -- when to try again -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float = 10.0  # one try, connect to last byte read
    give_up_after_seconds: float = 24 * 3600.0  # from the first try


class DeliveryState(StrEnum):
    DELIVERED = "Delivered"
    RETRYING = "Retrying"
    ABANDONED = "Abandoned"


@dataclass(frozen=True)
class Decision:
    """What follows a try: done, abandoned (with why), or another try at `retry_at`."""

    state: DeliveryState
    retry_at: float | None = None  # seconds since the epoch, when Retrying
    reason: str = ""


def next_delay(
    tries: int, retry_after: float | None, *, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after `tries` failed tries: 1, 2, 4, ... up to 5 min, each +-25 %.

    A receiver's Retry-After is a minimum (it knows its own load), but no more than 5 min:
    a receiver does not get to park a delivery for days.
    """
    backoff = min(MAX_DELAY, BASE_DELAY * 2 ** min(max(tries, 1) - 1, 30))
    delay = min(MAX_DELAY, backoff * (0.75 + 0.5 * rand()))
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, 0.0), MAX_DELAY))
    return delay


def decide(
    first_try_at: float,
    now: float,
    attempt: Attempt,
    tries: int,
    policy: DeliveryPolicy,
    *,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """After `tries` tries, the last one `attempt`: what now. Times are seconds since the epoch.

    A retry that would fall after `first_try_at + give_up_after_seconds` is not scheduled.
    """
    if attempt.outcome == "delivered":
        return Decision(DeliveryState.DELIVERED)
    if attempt.outcome == "give_up":
        return Decision(DeliveryState.ABANDONED, reason=attempt.error)
    retry_at = now + next_delay(tries, attempt.retry_after, rand=rand)
    if retry_at > first_try_at + policy.give_up_after_seconds:
        return Decision(
            DeliveryState.ABANDONED,
            reason=f"gave up after {tries} tries in {now - first_try_at:.0f} s: {attempt.error}",
        )
    return Decision(DeliveryState.RETRYING, retry_at)


# -- the whole delivery, in process (`videopipe run`) ----------------------------------------


def post(
    notification: Notification,
    body: bytes,
    msg_id: str,
    guard: Guard,
    *,
    timeout: float,
    timestamp: int,
    tls: ssl.SSLContext | None = None,
) -> Attempt:
    """One try at `notification`: check the URL again (addresses change), sign, send."""
    try:
        target = guard.check(notification.url)
    except Refused as exc:
        return Attempt("give_up", error=f"refused: {exc}")
    except Unresolved as exc:
        return Attempt("retry", error=str(exc))
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        **signature_headers(notification.secret, msg_id, timestamp, body),
    }
    return send(target, headers, body, timeout, tls=tls)


@dataclass(frozen=True)
class Delivery:
    """How a whole delivery ended, and its last try."""

    state: DeliveryState
    tries: int
    last: Attempt
    reason: str = ""


def deliver(
    notification: Notification,
    event: Mapping[str, Any],
    guard: Guard,
    policy: DeliveryPolicy = DeliveryPolicy(),  # frozen: one shared default is safe
    *,
    sleep: Callable[[float], None] = _time.sleep,
    clock: Callable[[], float] = _time.time,
    tls: ssl.SSLContext | None = None,
) -> Delivery:
    """Try until delivered or abandoned; every try carries the event id as webhook-id."""
    body = encode(event)
    first = clock()
    tries = 0
    while True:
        tries += 1
        attempt = post(
            notification,
            body,
            event["id"],
            guard,
            timeout=policy.timeout_seconds,
            timestamp=int(clock()),
            tls=tls,
        )
        decision = decide(first, clock(), attempt, tries, policy)
        if decision.state is not DeliveryState.RETRYING:
            return Delivery(decision.state, tries, attempt, decision.reason)
        assert decision.retry_at is not None
        sleep(max(0.0, decision.retry_at - clock()))
