"""GPU/CPU routing: policy first, then declared or estimated duration against the threshold."""

from __future__ import annotations

import pytest
from videopipe_operator.constants import Accelerator, Policy
from videopipe_operator.routing import declared_duration, estimate_duration, route
from videopipe_operator.specs import AcceleratorSpec

MB = 1_000_000


@pytest.mark.parametrize(
    ("policy", "size", "metadata", "expected"),
    [
        (Policy.CPU, 10_000 * MB, None, Accelerator.CPU),
        (Policy.GPU, 1, None, Accelerator.GPU),
        # auto, 2000 kbps: 150 MB ≈ 600 s is the threshold
        (Policy.AUTO, 149 * MB, None, Accelerator.CPU),
        (Policy.AUTO, 150 * MB, None, Accelerator.GPU),
        # declared duration wins over the size
        (Policy.AUTO, 1 * MB, {"duration": "3600"}, Accelerator.GPU),
        (Policy.AUTO, 900 * MB, {"duration": "30.5"}, Accelerator.CPU),
        # nonsense metadata falls back to the estimate
        (Policy.AUTO, 900 * MB, {"duration": "long"}, Accelerator.GPU),
        (Policy.AUTO, 1 * MB, {"duration": "-5"}, Accelerator.CPU),
        (Policy.AUTO, 1 * MB, {"duration": "nan"}, Accelerator.CPU),
    ],
)
def test_route(policy: Policy, size: int, metadata: dict | None, expected: Accelerator) -> None:
    spec = AcceleratorSpec(policy=policy, gpu_min_duration_seconds=600, assumed_bitrate_kbps=2000)
    assert route(spec, size, metadata).accelerator is expected


def test_route_says_whether_it_estimated() -> None:
    spec = AcceleratorSpec()
    assert route(spec, MB).estimated
    assert not route(spec, MB, {"duration": "12"}).estimated
    assert route(spec, MB, {"duration": "12"}).duration_seconds == 12


@pytest.mark.parametrize(
    ("size", "kbps", "seconds"), [(0, 128, 0), (16_000, 128, 1.0), (250_000, 2000, 1.0)]
)
def test_estimate_duration(size: int, kbps: int, seconds: float) -> None:
    assert estimate_duration(size, kbps) == pytest.approx(seconds)


def test_estimate_duration_needs_a_bitrate() -> None:
    with pytest.raises(ValueError):
        estimate_duration(1, 0)


@pytest.mark.parametrize(("meta", "value"), [(None, None), ({}, None), ({"duration": "7"}, 7.0)])
def test_declared_duration(meta: dict | None, value: float | None) -> None:
    assert declared_duration(meta) == value
