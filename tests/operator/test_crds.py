"""The CRDs are structural, complete and strict; checked as files (the e2e tests apply them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from videopipe_operator.constants import GROUP, VERSION, Phase, Policy
from videopipe_operator.specs import SOURCE_DEFAULTS, SourceSpec

CRDS = Path(__file__).resolve().parents[2] / "crds"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS / f"{GROUP}_{name}.yaml").read_text())


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    assert only["name"] == VERSION and only["served"] and only["storage"]
    return only


def walk(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", ["videosources", "videojobs"])
def test_structural(name: str) -> None:
    crd = load(name)
    assert crd["spec"]["group"] == GROUP and crd["spec"]["scope"] == "Namespaced"
    v = version(crd)
    assert v["subresources"] == {"status": {}}
    for path, schema in walk(v["schema"]["openAPIV3Schema"]):
        allowed_untyped = schema.get("x-kubernetes-int-or-string") or schema.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert "type" in schema or allowed_untyped, f"{name}{path} has no type"


@pytest.mark.parametrize(
    ("name", "short", "columns"),
    [
        ("videojobs", "vj", ["Source", "Video", "Phase", "Accel", "Duration", "Age"]),
        ("videosources", "vsrc", ["Bucket", "Ready", "Backlog", "Running", "Queued", "Age"]),
    ],
)
def test_names_and_columns(name: str, short: str, columns: list[str]) -> None:
    crd = load(name)
    assert crd["spec"]["names"]["shortNames"] == [short]
    shown = [c["name"] for c in version(crd)["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == columns


def test_enums_match_the_code() -> None:
    vj = version(load("videojobs"))["schema"]["openAPIV3Schema"]["properties"]
    assert vj["status"]["properties"]["phase"]["enum"] == [p.value for p in Phase]
    src = version(load("videosources"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    policy = src["properties"]["accelerator"]["properties"]["policy"]
    assert policy["enum"] == [p.value for p in Policy]


def test_source_limits_reject_nonsense() -> None:
    spec = version(load("videosources"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["bucket"]
    assert props["maxConcurrentJobs"]["minimum"] == 1
    assert props["pollIntervalSeconds"]["minimum"] == 1
    assert props["queueWindow"]["minimum"] == 0
    assert props["jobs"]["properties"]["backoffLimit"]["maximum"] == 10


def test_videojob_worker_schema_is_the_sources() -> None:
    """A VideoJob snapshots its source's worker settings, so the schemas must agree."""
    src = version(load("videosources"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    vj = version(load("videojobs"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert vj["properties"]["worker"] == src["properties"]["worker"]


def crd_defaults() -> dict[str, Any]:
    """Every default the VideoSource schema gives a field that is not an object."""
    spec = version(load("videosources"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return {
        path.lstrip("."): sub["default"]
        for path, sub in walk(spec)
        if "default" in sub and sub.get("type") != "object"
    }


def test_the_codes_source_defaults_are_the_crds() -> None:
    assert crd_defaults() == SOURCE_DEFAULTS
    # And what parsing a bare VideoSource fills in is those defaults.
    parsed = SourceSpec.parse({"metadata": {"name": "s"}, "spec": {"bucket": "b"}})
    assert (
        parsed.poll_interval_seconds,
        parsed.max_concurrent_jobs,
        parsed.queue_window,
        parsed.accelerator.policy,
        parsed.accelerator.gpu_min_duration_seconds,
        parsed.accelerator.assumed_bitrate_kbps,
        parsed.jobs.backoff_limit,
        parsed.jobs.ttl_seconds_after_finished,
        parsed.jobs.successful_history_limit,
        parsed.jobs.failed_history_limit,
        parsed.storage.layout.prefix,
    ) == tuple(
        crd_defaults()[name]
        for name in (
            "pollIntervalSeconds",
            "maxConcurrentJobs",
            "queueWindow",
            "accelerator.policy",
            "accelerator.gpuMinDurationSeconds",
            "accelerator.assumedBitrateKbps",
            "jobs.backoffLimit",
            "jobs.ttlSecondsAfterFinished",
            "jobs.successfulHistoryLimit",
            "jobs.failedHistoryLimit",
            "prefix",
        )
    )


def test_the_charts_videosource_values_mirror_the_crds_defaults() -> None:
    values = yaml.safe_load((CRDS.parent / "charts/videopipe/values.yaml").read_text())
    mirrored = 0
    for path, default in crd_defaults().items():
        node: Any = values["videoSource"]
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            assert node == default, path
            mirrored += 1
    assert mirrored >= 8  # the chart sets most of them; a renamed key would silently drop out


def test_model_cache_is_exactly_one_kind_with_the_codes_default_path() -> None:
    """The rule itself is evaluated by the API server in tests/e2e/test_model_cache.py."""
    from videopipe_operator.specs import DEFAULT_MODEL_CACHE_PATH, ModelCache

    spec = version(load("videosources"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    cache = spec["properties"]["worker"]["properties"]["modelCache"]
    assert set(cache["properties"]) == {"mountPath", "persistentVolumeClaim", "gcsFuse"}
    rules = [v["rule"] for v in cache["x-kubernetes-validations"]]
    assert rules == ["has(self.persistentVolumeClaim) != has(self.gcsFuse)"]
    assert cache["properties"]["mountPath"]["default"] == DEFAULT_MODEL_CACHE_PATH == "/models"
    assert cache["properties"]["persistentVolumeClaim"]["required"] == ["claimName"]
    assert cache["properties"]["gcsFuse"]["required"] == ["bucketName"]
    # An object written before the default existed still mounts where the CRD says.
    parsed = ModelCache.parse({"modelCache": {"persistentVolumeClaim": {"claimName": "m"}}})
    assert parsed is not None and parsed.mount_path == "/models" and parsed.claim_name == "m"
    assert ModelCache.parse({"model": "small"}) is None
