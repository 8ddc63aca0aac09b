"""The one module that talks to the Kubernetes API (the blocking `kubernetes` client).

Called only from sync kopf handlers and the sync source daemons, which kopf runs in its thread
pool, never from the event loop. Objects come back as plain camelCase dicts (the same shape kopf
and the CRDs use), not as the client's model classes, so the pure modules see one data shape.
Every "not found" is a None or a no-op and every "already exists" a False: the callers are
idempotent and treat both as facts, not failures.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from videopipe_operator.constants import (
    GROUP,
    LABEL_SOURCE,
    MANAGER,
    SOURCE_PLURAL,
    VERSION,
    VIDEOJOB_PLURAL,
)

Json = dict[str, Any]
T = TypeVar("T")
MAX_EVENT_MESSAGE = 1000


def in_cluster(kubeconfig: str | None = None) -> bool:
    """True when no kubeconfig is given and we run in a pod (service account credentials)."""
    return not (kubeconfig or os.environ.get("KUBECONFIG")) and bool(
        os.environ.get("KUBERNETES_SERVICE_HOST")
    )


def load_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from `kubeconfig`, else `$KUBECONFIG`/~/.kube/config, else in-cluster.

    The path is passed explicitly: the `kubernetes` package reads `$KUBECONFIG` only once, at
    import (docs/architecture.md, "Measured facts").
    """
    configuration = client.Configuration()
    if in_cluster(kubeconfig):
        config.load_incluster_config(client_configuration=configuration)
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        config.load_kube_config(config_file=path, client_configuration=configuration)
    return client.ApiClient(configuration)


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own API connection (one kubeconfig, read once)."""
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").partition(" ")
    if not token:
        scheme, token = "", scheme
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        username=configuration.username or None,
        password=configuration.password or None,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """Typed verbs over one ApiClient."""

    def __init__(
        self, api: client.ApiClient, on_api_error: Callable[[str], None] | None = None
    ) -> None:
        self.api = api
        # Told the operation of every failed call (NotFound and AlreadyExists are answers):
        # the process wires metrics in here, so that this I/O module does not import them.
        self.on_api_error = on_api_error or (lambda _operation: None)
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.instance = os.environ.get("HOSTNAME") or socket.gethostname()

    # -- plumbing --

    def _call(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status not in (404, 409):
                self.on_api_error(operation)
            raise
        except (urllib3.exceptions.HTTPError, OSError):
            # No answer at all (refused, reset, timed out): the API server being unreachable
            # is the failure the error counter most needs to show.
            self.on_api_error(operation)
            raise

    def _json(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
        resp = self._call(operation, fn, *args, _preload_content=False, **kwargs)
        return json.loads(resp.data)

    # -- VideoSources --

    def get_source(self, namespace: str, name: str) -> Json | None:
        try:
            return self._json(
                "get_videosource",
                self.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                SOURCE_PLURAL,
                name,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def list_sources(self, namespaces: tuple[str, ...] = ()) -> list[Json]:
        """The VideoSources in `namespaces`, or in every namespace when it is empty."""
        if not namespaces:
            data = self._json(
                "list_videosources",
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                SOURCE_PLURAL,
            )
            return list(data.get("items") or [])
        items: list[Json] = []
        for namespace in namespaces:
            data = self._json(
                "list_videosources",
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                SOURCE_PLURAL,
            )
            items.extend(data.get("items") or [])
        return items

    def patch_source_status(self, namespace: str, name: str, patch: Json) -> None:
        try:
            self._call(
                "patch_videosource_status",
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                SOURCE_PLURAL,
                name,
                {"status": patch},
            )
        except ApiException as e:
            if e.status != 404:
                raise

    # -- VideoJobs --

    def list_videojobs(self, namespace: str, source: str) -> list[Json]:
        data = self._json(
            "list_videojobs",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            VIDEOJOB_PLURAL,
            label_selector=f"{LABEL_SOURCE}={source}",
        )
        return list(data.get("items") or [])

    def get_videojob(self, namespace: str, name: str) -> Json | None:
        try:
            return self._json(
                "get_videojob",
                self.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                VIDEOJOB_PLURAL,
                name,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def create_videojob(self, body: Json) -> Json | None:
        """The created VideoJob, or None if one of that name exists (already claimed)."""
        try:
            return self._json(
                "create_videojob",
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                body["metadata"]["namespace"],
                VIDEOJOB_PLURAL,
                body,
            )
        except ApiException as e:
            if e.status == 409:
                return None
            raise

    def patch_videojob(self, namespace: str, name: str, patch: Json) -> Json | None:
        """Merge-patch metadata/spec; returns the new object (None if it is gone)."""
        try:
            return self._json(
                "patch_videojob",
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                VIDEOJOB_PLURAL,
                name,
                patch,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def patch_videojob_status(self, namespace: str, name: str, patch: Json) -> Json | None:
        try:
            return self._json(
                "patch_videojob_status",
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                VIDEOJOB_PLURAL,
                name,
                {"status": patch},
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete_videojob(self, namespace: str, name: str) -> None:
        try:
            self._call(
                "delete_videojob",
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                VIDEOJOB_PLURAL,
                name,
            )
        except ApiException as e:
            if e.status != 404:
                raise

    # -- Jobs and pods --

    def list_jobs(self, namespace: str, source: str) -> list[Json]:
        data = self._json(
            "list_jobs",
            self.batch.list_namespaced_job,
            namespace,
            label_selector=f"{LABEL_SOURCE}={source}",
        )
        return list(data.get("items") or [])

    def create_job(self, body: Json) -> bool:
        """True if created now, False if it existed (a crash after creating it last time)."""
        try:
            self._call(
                "create_job", self.batch.create_namespaced_job, body["metadata"]["namespace"], body
            )
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and (in the background) its pods; a missing Job is fine."""
        try:
            self._call(
                "delete_job",
                self.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            )
        except ApiException as e:
            if e.status != 404:
                raise

    def list_pods(self, namespace: str, source: str) -> list[Json]:
        data = self._json(
            "list_pods",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"{LABEL_SOURCE}={source}",
        )
        return list(data.get("items") or [])

    # -- Secrets --

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's keys, decoded; None if there is no such Secret."""
        try:
            data = self._json("read_secret", self.core.read_namespaced_secret, name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        out: dict[str, str] = {}
        for key, value in (data.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                out[key] = ""
        for key, value in (data.get("stringData") or {}).items():
            out[key] = value
        return out

    # -- PersistentVolumeClaims --

    def get_pvc(self, namespace: str, name: str) -> Json | None:
        """A PersistentVolumeClaim (its status says whether it is Bound); None if there is none."""
        try:
            return self._json(
                "read_pvc", self.core.read_namespaced_persistent_volume_claim, name, namespace
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    # -- Events --

    def post_event(
        self, involved: Json, reason: str, message: str, *, warning: bool = False
    ) -> None:
        """A core/v1 Event on `involved` (a VideoJob or VideoSource); never raises."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        now = _now()
        if len(message) > MAX_EVENT_MESSAGE:
            message = message[: MAX_EVENT_MESSAGE - 3] + "..."
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name', 'videopipe')}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": MANAGER},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": self.instance,
        }
        # An Event is a courtesy; losing one must not fail a reconcile.
        with contextlib.suppress(ApiException):
            self._call("create_event", self.core.create_namespaced_event, namespace, body)


__all__ = ["Kube", "connection_info", "in_cluster", "load_client"]
