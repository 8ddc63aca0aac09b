"""`RealNodePlacement`: a mutating admission webhook that sends pods to the real node.

Why: the pods of the real-node tests are made by the product (the operator's worker Jobs, the
chart's Deployment), and they must run on `real-node`, in the host's network: the test servers
(moto, the API server, fault relays) listen on 127.0.0.1 only, and test traffic goes to nothing
else. Rather than teach the product about the test machine, the test cluster does what a
platform team's policy webhook would do, for the pods of namespaces labelled `REAL_NODE_LABEL`
and only those:

- `nodeSelector` and a toleration for the real node's label and taint;
- `hostNetwork: true` (`dnsPolicy: Default`: there is no cluster DNS);
- `KUBERNETES_SERVICE_HOST`/`_PORT` = the API server on 127.0.0.1 (there is no kube-proxy for
  the `kubernetes` Service's ClusterIP); a variable the pod sets itself wins;
- `host: 127.0.0.1` on HTTP probes, which would otherwise target the node's external address.

Everything else (images, commands, securityContext, resources, probe paths and thresholds) is
left exactly as the product wrote it. Pod Security `restricted` forbids the host network, so these
namespaces enforce `privileged`; the security settings are checked inside the running
containers instead (tests/e2e/test_real_node.py).

The webhook is an HTTPS server on 127.0.0.1 whose certificate the cluster CA signs.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from kubernetes import client

from tests.cluster.controlplane import ControlPlane
from tests.cluster.node import REAL_NODE_LABEL

Json = dict[str, Any]
WEBHOOK_NAME = "real-node-placement.videopipe.dev"


def place(pod_spec: Json, api_port: int) -> Json:
    """The pod spec as it must be to run on the real node (a new dict; the input is kept)."""
    spec = copy.deepcopy(pod_spec)
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), REAL_NODE_LABEL: "true"}
    toleration = {"key": REAL_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
    spec["tolerations"] = [*(spec.get("tolerations") or []), toleration]
    spec["hostNetwork"] = True
    spec["dnsPolicy"] = "Default"
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        env = container.setdefault("env", [])
        names = {e["name"] for e in env}
        for name, value in [
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", str(api_port)),
        ]:
            if name not in names:
                env.append({"name": name, "value": value})
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            http = (container.get(probe) or {}).get("httpGet")
            if http is not None:
                http["host"] = "127.0.0.1"
    return spec


class RealNodePlacement:
    """The webhook server plus its MutatingWebhookConfiguration; `close()` removes both."""

    def __init__(self, control_plane: ControlPlane, api: client.ApiClient) -> None:
        self._api = api
        self.requests = 0
        api_port = urlparse(control_plane.server).port
        assert api_port is not None
        folder = control_plane.dir / "placement"
        folder.mkdir(exist_ok=True)
        cert, key = control_plane.issue("real-node-placement", server=True, ips=["127.0.0.1"])
        (folder / "tls.crt").write_bytes(cert)
        (folder / "tls.key").write_bytes(key)
        placement = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = review["request"]
                placement.requests += 1
                spec = place(request["object"]["spec"], api_port)
                patch = [{"op": "replace", "path": "/spec", "value": spec}]
                answer = {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": request["uid"],
                        "allowed": True,
                        "patchType": "JSONPatch",
                        "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                    },
                }
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(folder / "tls.crt", folder / "tls.key")
        self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        port = self._server.server_address[1]
        self._admission = client.AdmissionregistrationV1Api(api)
        self._admission.create_mutating_webhook_configuration(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": WEBHOOK_NAME},
                "webhooks": [
                    {
                        "name": WEBHOOK_NAME,
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{port}/mutate",
                            "caBundle": base64.b64encode(
                                control_plane.ca_file.read_bytes()
                            ).decode(),
                        },
                        "rules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["pods"],
                                "scope": "Namespaced",
                            }
                        ],
                        "namespaceSelector": {"matchLabels": {REAL_NODE_LABEL: "true"}},
                        # A pod that was not placed must not start elsewhere.
                        "failurePolicy": "Fail",
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "timeoutSeconds": 10,
                        "reinvocationPolicy": "Never",
                    }
                ],
            }
        )

    def close(self) -> None:
        try:
            self._admission.delete_mutating_webhook_configuration(WEBHOOK_NAME)
        except client.ApiException as e:
            if e.status != 404:
                raise
        self._server.shutdown()
        self._server.server_close()


__all__ = ["WEBHOOK_NAME", "RealNodePlacement", "place"]
