"""The CRDs on the real API server: defaults applied, nonsense rejected, identity immutable."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import GROUP, VERSION, Videopipe

pytestmark = pytest.mark.cluster


def create(videopipe: Videopipe, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    return videopipe.custom.create_namespaced_custom_object(
        GROUP, VERSION, videopipe.namespace, plural, body
    )


def source(name: str = "s", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoSource",
        "metadata": {"name": name},
        "spec": {"bucket": "videos", **spec},
    }


def test_defaults_are_applied(videopipe: Videopipe) -> None:
    spec = create(videopipe, "videosources", source())["spec"]
    assert spec["pollIntervalSeconds"] == 15 and spec["maxConcurrentJobs"] == 4
    assert spec["queueWindow"] == 2 and spec["prefix"] == ""
    assert spec["accelerator"] == {
        "policy": "auto",
        "gpuMinDurationSeconds": 600,
        "assumedBitrateKbps": 2000,
    }
    assert spec["worker"] == {"summary": False}
    assert spec["jobs"]["backoffLimit"] == 1 and spec["jobs"]["successfulHistoryLimit"] == 50


@pytest.mark.parametrize(
    ("name", "spec", "why"),
    [
        ("s", {"maxConcurrentJobs": 0}, "maxConcurrentJobs"),
        ("s", {"pollIntervalSeconds": -5}, "pollIntervalSeconds"),
        ("s", {"accelerator": {"policy": "fast"}}, "policy"),
        ("s", {"bucket": "No_Such Bucket!"}, "bucket"),
        ("s", {"endpoint": "storage.googleapis.com"}, "endpoint"),
        ("s", {"worker": {"summary": True}}, "geminiSecret"),
        ("s", {"worker": {"beamSize": 0}}, "beamSize"),
        ("s", {"worker": {"env": [{"name": "1BAD"}]}}, "name"),
        ("s", {"jobs": {"backoffLimit": 99}}, "backoffLimit"),
        ("x" * 64, {}, "63 characters"),
    ],
)
def test_nonsense_is_rejected(videopipe: Videopipe, name: str, spec: dict, why: str) -> None:
    with pytest.raises(client.ApiException) as err:
        create(videopipe, "videosources", source(name, **spec))
    assert err.value.status == 422 and why in err.value.body


def videojob(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoJob",
        "metadata": {"name": "talk-0123456789ab"},
        "spec": {
            "source": "talks",
            "bucket": "videos",
            "key": "pending/talk.mp4",
            "path": "talk.mp4",
            "etag": "abc",
            "accelerator": "cpu",
            **spec,
        },
    }


def test_videojob_identity_is_immutable_and_attempts_only_grow(videopipe: Videopipe) -> None:
    create(videopipe, "videojobs", videojob())

    def patch(spec: dict[str, Any]) -> None:
        videopipe.custom.patch_namespaced_custom_object(
            GROUP, VERSION, videopipe.namespace, "videojobs", "talk-0123456789ab", {"spec": spec}
        )

    for change in ({"key": "pending/other.mp4"}, {"etag": "def"}, {"attempt": 0}):
        with pytest.raises(client.ApiException) as err:
            patch(change)
        assert err.value.status == 422, change
    patch({"attempt": 2})  # a retry


def test_videojob_status_phase_is_an_enum(videopipe: Videopipe) -> None:
    create(videopipe, "videojobs", videojob())
    with pytest.raises(client.ApiException) as err:
        videopipe.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            videopipe.namespace,
            "videojobs",
            "talk-0123456789ab",
            {"status": {"phase": "Done"}},
        )
    assert err.value.status == 422
