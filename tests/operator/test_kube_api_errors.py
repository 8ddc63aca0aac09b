"""`videopipe_kubernetes_api_errors_total` counts the operator's failed Kubernetes API calls,
including those that got no answer at all (refused, reset), and never a 404 or 409.

`Kube` is the real one over a real `kubernetes` ApiClient; the API server is a stand-in on
127.0.0.1 that answers every request with one status, resets every connection, or is not there.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client.registry import REGISTRY
from videopipe_operator import metrics
from videopipe_operator.kube import Kube

from tests.support.localserver import LocalServer
from tests.support.ports import free_port


class FakeApiServer(LocalServer):
    """Answers every request with `status` (a Kubernetes Status body), or resets it."""

    def __init__(self, status: int) -> None:
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if server.status == 0:  # reset: RST before any answer
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                body = json.dumps(
                    {"kind": "Status", "apiVersion": "v1", "code": server.status}
                ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


def _kube(host: str) -> Kube:
    configuration = client.Configuration()
    configuration.host = host
    configuration.retries = False  # one attempt per call: the count is exact
    return Kube(client.ApiClient(configuration), on_api_error=metrics.count_kube_api_error)


def _errors(operation: str) -> float:
    sample = REGISTRY.get_sample_value(
        "videopipe_kubernetes_api_errors_total", {"operation": operation}
    )
    return sample or 0.0


@pytest.fixture
def api_server(request: pytest.FixtureRequest) -> Iterator[FakeApiServer]:
    server = FakeApiServer(request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("api_server", [404], indirect=True)
def test_not_found_is_an_answer(api_server: FakeApiServer) -> None:
    before = _errors("get_videojob")
    assert _kube(api_server.url).get_videojob("media", "absent") is None
    assert _errors("get_videojob") == before


@pytest.mark.parametrize("api_server", [500], indirect=True)
def test_a_server_error_counts(api_server: FakeApiServer) -> None:
    before = _errors("list_jobs")
    with pytest.raises(ApiException):
        _kube(api_server.url).list_jobs("media", "talks")
    assert _errors("list_jobs") == before + 1


@pytest.mark.parametrize("api_server", [0], indirect=True)
def test_a_reset_connection_counts(api_server: FakeApiServer) -> None:
    before = _errors("list_pods")
    with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
        _kube(api_server.url).list_pods("media", "talks")
    assert _errors("list_pods") == before + 1


def test_an_api_server_that_is_not_there_counts() -> None:
    before = _errors("get_videosource")
    kube = _kube(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
        kube.get_source("media", "talks")
    assert _errors("get_videosource") == before + 1
