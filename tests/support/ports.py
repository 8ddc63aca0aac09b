"""Free loopback ports for the servers that tests start (moto, the control plane, the operator).

Why not bind port 0 and hand the number on: the kernel takes such a port from the ephemeral range,
the same range it takes the local port of every outgoing connection from (boto3 to moto, kopf and
the controllers to the API server, ...). Between our check and the server's own bind, one of those
connections can take the port and the server fails to start: a flake that shows only under load.
The kernel never gives a port below that range to an outgoing connection, so we pick one there at
random, check that it binds, and never hand out the same one twice in this process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # below this, well-known services live
_given: set[int] = set()
_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _binds(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on and no outgoing connection will take."""
    top = _ephemeral_start()
    with _lock:
        if top - _LOWEST > 1000:
            for _ in range(200):
                port = random.randrange(_LOWEST, top)
                if port not in _given and _binds(port):
                    _given.add(port)
                    return port
        # A machine whose ephemeral range starts low: fall back to the kernel's choice.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        _given.add(port)
        return port
