"""Builders of VideoSource and VideoJob bodies as the API server returns them (defaults applied).

A module rather than fixtures because parametrized cases need them at collection time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from videopipe.store import ObjectInfo
from videopipe_operator import manifests, routing
from videopipe_operator.specs import SourceSpec

Json = dict[str, Any]


def source_body(name: str = "talks", namespace: str = "media", **spec: Any) -> Json:
    base: Json = {"bucket": "videos", "endpoint": "http://s3.local:9000"}
    base.update(spec)
    return {
        "apiVersion": "videopipe.dev/v1alpha1",
        "kind": "VideoSource",
        "metadata": {"name": name, "namespace": namespace, "uid": "src-uid", "generation": 1},
        "spec": base,
    }


def videojob_body(
    source: Json | None = None,
    key: str = "pending/talk.mp4",
    etag: str = "abc123",
    size: int = 10_000_000,
    status: Json | None = None,
    generation: int = 1,
    metadata: dict[str, str] | None = None,
) -> Json:
    spec = SourceSpec.parse(source or source_body())
    obj = ObjectInfo(
        key=key,
        etag=etag,
        size=size,
        last_modified=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        metadata=metadata,
    )
    body = manifests.build_videojob(spec, obj, routing.route(spec.accelerator, size, metadata))
    body["metadata"].update(
        {"uid": "vj-uid", "generation": generation, "creationTimestamp": "2025-01-02T03:05:00Z"}
    )
    if status is not None:
        body["status"] = status
    return body
