"""The SQS consumer against moto's real server: S3 itself sends the events to the queue.

The moto server of `s3_endpoint` speaks SQS too, and its S3 delivers bucket notifications to
its queues (a TestEvent first, when the notification is configured), as AWS does. The hint store
is the real `Hints`; the test plays the source's loop by `take` and `done`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from prometheus_client import REGISTRY
from videopipe.layout import Layout
from videopipe_operator.hints import Hints, Ticket
from videopipe_operator.sqsevents import SqsConsumer

from tests.support.ports import free_port

SOURCE = ("media", "talks")
LABEL = "media/talks"
KEY = "pending/лекция 1.mp4"


def sqs_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": LABEL, "kind": "sqs", **labels}) or 0.0


@dataclass
class Recorder:
    """The source's side: the real hint store, and every hint as it came."""

    hints: Hints = field(default_factory=Hints)
    calls: list[set[str]] = field(default_factory=list)

    def __call__(self, keys: set[str]) -> Ticket:
        self.calls.append(set(keys))
        return self.hints.add(SOURCE, keys)

    def run_pass(self) -> set[str]:
        keys, tickets = self.hints.take(SOURCE)
        self.hints.done(tickets)
        return keys


@dataclass
class Queue:
    sqs: Any
    url: str

    def count(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        return sum(int(attrs["Attributes"][n]) for n in names)


@pytest.fixture
def queue(s3_endpoint: str) -> Iterator[Queue]:
    sqs = sqs_client(s3_endpoint)
    url = sqs.create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": "2"}
    )["QueueUrl"]
    try:
        yield Queue(sqs, url)
    finally:
        sqs.delete_queue(QueueUrl=url)


def notify(s3: Any, bucket: str, queue: Queue) -> None:
    arn = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "pending/"}]}},
                }
            ]
        },
    )


def consumer(
    queue: Queue, bucket: str, hint: Callable[[set[str]], Ticket], **kwargs: Any
) -> SqsConsumer:
    kwargs.setdefault("wait_seconds", 1)
    kwargs.setdefault("visibility_timeout", 2)
    return SqsConsumer(
        queue.sqs, queue.url, source=LABEL, bucket=bucket, layout=Layout(), hint=hint, **kwargs
    ).start()


def test_an_upload_is_hinted_and_deleted_once_its_pass_ran(
    s3: Any, bucket: str, queue: Queue
) -> None:
    notify(s3, bucket, queue)
    assert queue.count() == 1  # moto, as AWS, sends a TestEvent first
    hint = Recorder()
    received = counter("videopipe_events_received_total")
    c = consumer(queue, bucket, hint)
    try:
        assert eventually(lambda: queue.count() == 0)  # the TestEvent: deleted, no hint
        assert hint.calls == []
        s3.put_object(Bucket=bucket, Key=KEY, Body=b"video")
        s3.put_object(Bucket=bucket, Key="processing/not-for-us.mp4", Body=b"x")
        assert eventually(lambda: hint.hints.pending(SOURCE))
        assert hint.calls == [{KEY}]
        assert queue.count() == 1  # waiting for its pass
        assert hint.run_pass() == {KEY}
        assert eventually(lambda: queue.count() == 0)
        assert counter("videopipe_events_received_total") == received + 2
    finally:
        c.stop()
    assert not c.alive


def test_a_message_stays_until_its_ticket_is_set(s3: Any, bucket: str, queue: Queue) -> None:
    notify(s3, bucket, queue)
    hint = Recorder()
    c = consumer(queue, bucket, hint)
    try:
        assert eventually(lambda: queue.count() == 0)
        s3.put_object(Bucket=bucket, Key=KEY, Body=b"video")
        # No pass runs: the consumer gives the ticket up, SQS delivers the message again
        # after its 2 s visibility timeout, and it is hinted again.
        assert eventually(lambda: len(hint.calls) >= 2, seconds=15)
        assert all(keys == {KEY} for keys in hint.calls)
        assert queue.count() == 1
        assert hint.run_pass() == {KEY}
        assert eventually(lambda: queue.count() == 0)
        calls = len(hint.calls)
        time.sleep(3)  # past another visibility timeout: nothing comes back
        assert len(hint.calls) == calls and queue.count() == 0
    finally:
        c.stop()


def record(event: str, bucket: str, key: str) -> str:
    s3 = {"bucket": {"name": bucket}, "object": {"key": key}}
    return json.dumps({"Records": [{"eventName": event, "s3": s3}]})


def test_malformed_and_foreign_messages_are_deleted_at_once(bucket: str, queue: Queue) -> None:
    hint = Recorder()
    malformed = counter("videopipe_events_rejected_total", reason="Malformed")
    foreign = record("ObjectCreated:Put", "someone-else", "pending/a.mp4")
    deleted = record("ObjectRemoved:Delete", bucket, "pending/a.mp4")
    for body in ("this is not an event", foreign, deleted):
        queue.sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    c = consumer(queue, bucket, hint)
    try:
        assert eventually(lambda: queue.count() == 0)
        assert hint.calls == []
        assert counter("videopipe_events_rejected_total", reason="Malformed") == malformed + 1
    finally:
        c.stop()


def test_a_hint_that_fails_leaves_the_message_for_redelivery(
    s3: Any, bucket: str, queue: Queue
) -> None:
    notify(s3, bucket, queue)
    attempts: list[set[str]] = []

    def failing(keys: set[str]) -> Ticket:
        attempts.append(keys)
        raise RuntimeError("the loop is gone")

    c = consumer(queue, bucket, failing, visibility_timeout=1)
    try:
        s3.put_object(Bucket=bucket, Key=KEY, Body=b"video")
        assert eventually(lambda: len(attempts) >= 2)
        assert c.alive and queue.count() == 1
    finally:
        c.stop()


@pytest.mark.parametrize("where", ["closed-port", "no-such-queue"])
def test_sqs_errors_keep_the_consumer_alive_and_stop_ends_it(
    s3_endpoint: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="videopipe_operator.sqsevents")
    if where == "closed-port":
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        url = f"{endpoint}/123456789012/events"
    else:
        endpoint = s3_endpoint
        url = f"{s3_endpoint}/123456789012/no-such-queue-{uuid.uuid4().hex[:8]}"
    reason = "EndpointUnreachable" if where == "closed-port" else "StorageError"
    errors = counter("videopipe_events_errors_total", reason=reason)
    broken = Queue(sqs_client(endpoint), url)
    c = consumer(broken, "videos", Recorder(), backoff_max=0.2)
    try:
        assert eventually(
            lambda: counter("videopipe_events_errors_total", reason=reason) >= errors + 3
        )
        assert c.alive
        assert "SQS ReceiveMessage" in caplog.text and reason in caplog.text
    finally:
        began = time.monotonic()
        c.stop()
        assert not c.alive and time.monotonic() - began < 1.5


def test_stop_ends_a_consumer_in_the_middle_of_a_long_poll(bucket: str, queue: Queue) -> None:
    c = consumer(queue, bucket, Recorder(), wait_seconds=20)
    time.sleep(0.5)  # the 20 s receive is under way
    began = time.monotonic()
    c.stop()
    assert not c.alive and time.monotonic() - began < 1.5


def test_hints_coalesce_and_a_ticket_is_set_only_by_the_pass_that_took_it() -> None:
    hints = Hints()
    tickets: list[Ticket] = []

    def burst(n: int) -> None:
        for i in range(1000):
            tickets.append(hints.add(SOURCE, {f"pending/{i % 10}.mp4"}))

    workers = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len({id(t) for t in tickets}) == 1  # 4,000 duplicate hints: one ticket, one set
    keys, taken = hints.take(SOURCE)
    assert keys == {f"pending/{i}.mp4" for i in range(10)} and taken == [tickets[0]]
    later = hints.add(SOURCE, {"pending/late.mp4"})  # after the pass began: the next pass's
    assert later is not tickets[0] and not tickets[0].is_set()
    hints.done(taken)
    assert tickets[0].is_set() and not later.is_set()
    assert hints.take(SOURCE) == ({"pending/late.mp4"}, [later])
    assert hints.take(("media", "other")) == (set(), [])
