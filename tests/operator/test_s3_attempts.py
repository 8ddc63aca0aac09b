"""The operator's S3 metrics count every HTTP attempt, so that a store's throttling shows even
when boto3's retries cure every call.

A real boto3 client (`videopipe.s3.make_client`, instrumented by `metrics.instrument_s3`) talks
to the moto server through `S3Proxy`, which answers the first requests with `503 SlowDown` or
resets their connection (`Scripted`); the counters are read from prometheus_client's registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from prometheus_client.registry import REGISTRY
from videopipe.s3 import make_client
from videopipe_operator import metrics

from tests.support.s3proxy import S3Proxy, Scripted


@pytest.fixture
def script() -> Scripted:
    return Scripted()


@pytest.fixture
def proxy(s3_endpoint: str, script: Scripted) -> Iterator[S3Proxy]:
    server = S3Proxy(s3_endpoint, drop={}, script=script)
    try:
        yield server
    finally:
        server.close()


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _sum(name: str, source: str, **labels: str) -> float:
    """A counter summed over the operations (and reasons) not given in `labels`."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            wanted = {"source": source, **labels}
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                total += sample.value
    return total


def _client(proxy: S3Proxy, source: str, max_attempts: int = 5):
    client = make_client(proxy.url, max_attempts=max_attempts, connect_timeout=2, read_timeout=5)
    return metrics.instrument_s3(client, source)


def _source() -> str:
    return f"test/{uuid.uuid4().hex[:8]}"


def test_throttled_attempts_are_counted_although_every_call_succeeds(
    proxy: S3Proxy, script: Scripted, bucket: str
) -> None:
    source = _source()
    s3 = _client(proxy, source)
    script.actions[:] = ["503", "503", "503"]
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"video")
    assert s3.get_object(Bucket=bucket, Key="pending/a.mp4")["Body"].read() == b"video"
    s3.list_objects_v2(Bucket=bucket, Prefix="pending/")
    with pytest.raises(ClientError):  # an answer (404 on HEAD): neither retried nor an error
        s3.head_object(Bucket=bucket, Key="pending/absent.mp4")

    assert script.injected["503"] == 3
    calls = _sum("videopipe_s3_requests_total", source)
    assert calls == 4
    assert _sum("videopipe_s3_attempts_total", source) == calls + 3
    assert _sum("videopipe_s3_retries_total", source, reason="Throttled") == 3
    assert _sum("videopipe_s3_retries_total", source) == 3
    assert _sum("videopipe_s3_errors_total", source) == 0
    # All three SlowDowns met the first call, PutObject (it may retry five times).
    assert _value("videopipe_s3_attempts_total", source=source, operation="PutObject") == 4
    assert (
        _value(
            "videopipe_s3_retries_total", source=source, operation="PutObject", reason="Throttled"
        )
        == 3
    )


def test_a_reset_connection_is_an_unreachable_endpoint_retried(
    proxy: S3Proxy, script: Scripted, bucket: str
) -> None:
    source = _source()
    s3 = _client(proxy, source)
    script.actions[:] = ["reset"]
    s3.list_objects_v2(Bucket=bucket, Prefix="pending/")

    assert script.injected["reset"] == 1
    labels = {"source": source, "operation": "ListObjectsV2"}
    assert _value("videopipe_s3_requests_total", **labels) == 1
    assert _value("videopipe_s3_attempts_total", **labels) == 2
    assert _value("videopipe_s3_retries_total", **labels, reason="EndpointUnreachable") == 1
    assert _sum("videopipe_s3_errors_total", source) == 0


def test_a_call_that_fails_after_its_retries_is_one_error(
    proxy: S3Proxy, script: Scripted, bucket: str
) -> None:
    source = _source()
    s3 = _client(proxy, source, max_attempts=1)  # botocore: `max_attempts` retries, 2 attempts
    script.actions[:] = ["503", "503"]
    with pytest.raises(ClientError) as raised:
        s3.list_objects_v2(Bucket=bucket, Prefix="pending/")
    assert raised.value.response["Error"]["Code"] == "SlowDown"

    labels = {"source": source, "operation": "ListObjectsV2"}
    assert _value("videopipe_s3_requests_total", **labels) == 1
    assert _value("videopipe_s3_attempts_total", **labels) == 2
    # The second failure was not retried: it is the call's error, not a retry.
    assert _value("videopipe_s3_retries_total", **labels, reason="Throttled") == 1
    assert _value("videopipe_s3_errors_total", **labels, reason="Throttled") == 1
