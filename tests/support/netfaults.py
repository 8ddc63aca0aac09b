"""Network faults on 127.0.0.1 that the probes must catch, made with real sockets.

- `StreamFreezer`: a TCP relay in front of the API server that, once frozen, stops forwarding
  what the server sends on long-lived streams (watches) while short request/response exchanges
  go on. That is the silent watch of kopf #1276 as users meet it: a load balancer, NAT or proxy
  that keeps the connection open and forwards nothing. TLS passes through untouched (the relay
  never reads it); a stream is told from a request by timing alone: server bytes arriving while
  the client has sent nothing for `quiet` seconds belong to a stream.
- `Blackhole`: an endpoint that accepts TCP connections and never answers (a hung S3 load
  balancer): whoever calls it waits for its read timeout. Closing it resets the waiting
  connections and refuses new ones, as a recovered outage that fails fast would.

Every loop here ends when its sockets close; `close()` closes them all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


def _listen(backlog: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    server: socket.socket
    last_client_send: float = field(default_factory=time.monotonic)
    frozen: bool = False

    def close(self) -> None:
        _shut(self.client)
        _shut(self.server)


class StreamFreezer:
    def __init__(self, target_port: int, quiet: float = 3.0) -> None:
        self.target_port = target_port
        self.quiet = quiet
        self._listener = _listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._freezing = False
        threading.Thread(target=self._accept, name="freezer-accept", daemon=True).start()

    # -- control --

    def freeze(self) -> None:
        """From now on, server data on a connection quiet for `quiet` seconds is swallowed."""
        self._freezing = True

    def thaw(self) -> int:
        """Forward again, and cut the frozen connections (their TLS stream has holes now), so
        that clients see the disconnect and re-connect. Returns how many were frozen."""
        self._freezing = False
        with self._lock:
            frozen = [p for p in self._pairs if p.frozen]
        for pair in frozen:
            pair.close()
        return len(frozen)

    @property
    def frozen(self) -> int:
        with self._lock:
            return sum(1 for p in self._pairs if p.frozen)

    def close(self) -> None:
        _shut(self._listener)
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    # -- relaying --

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _shut(client)
                continue
            server.settimeout(None)
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._upstream, args=(pair,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(pair,), daemon=True).start()

    def _upstream(self, pair: _Pair) -> None:
        with contextlib.suppress(OSError):  # either side closed
            while data := pair.client.recv(65536):
                pair.last_client_send = time.monotonic()
                pair.server.sendall(data)
        self._drop(pair)

    def _downstream(self, pair: _Pair) -> None:
        with contextlib.suppress(OSError):  # either side closed
            while data := pair.server.recv(65536):
                quiet_for = time.monotonic() - pair.last_client_send
                if self._freezing and quiet_for > self.quiet:
                    pair.frozen = True
                if not pair.frozen:
                    pair.client.sendall(data)
        self._drop(pair)

    def _drop(self, pair: _Pair) -> None:
        pair.close()
        with self._lock:
            self._pairs.discard(pair)


class Blackhole:
    def __init__(self) -> None:
        self._listener = _listen(64)  # the kernel completes handshakes; nobody ever reads
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()  # queued connections get a reset, new ones are refused


__all__ = ["Blackhole", "StreamFreezer"]
