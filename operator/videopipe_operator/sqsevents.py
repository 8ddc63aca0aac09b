"""One source's SQS consumer: bucket events from a queue to hints, deleted once they are handled.

A thread long-polls the queue, parses each body (`bucketevents`) and hands the keys of this
source's pending/ folder to `hint`, which returns a ticket the loop sets after a pass that began
after the hint (`hints.Hints`). A message is deleted only once its ticket is set, so an operator
that dies in between leaves it to SQS to deliver again: at-least-once, end to end. A ticket not
set before the message would turn visible again (the visibility timeout less a margin) is given
up: SQS redelivers the message and it is hinted again.

Deleted at once: a TestEvent, an event that names no video of this source (a deletion, another
folder), and a malformed body. The last is logged and counted, not left for a dead-letter
queue: the same bytes can never parse, and leaving them would log the same warning every
visibility timeout until maxReceiveCount. One queue serves one source: SQS hands each message
to one consumer, so sources sharing a queue would take each other's events (fan a topic out to
one queue per source instead).

Errors talking to SQS (endpoint down, credentials, queue missing) never end the thread: logged,
counted, retried with a growing pause. The long poll runs in a helper thread, so `stop()` ends
the consumer within about a second even mid-poll; what that abandoned poll receives turns
visible again after the visibility timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from videopipe.layout import Layout
from videopipe.s3errors import classify

from videopipe_operator import bucketevents, metrics

log = logging.getLogger(__name__)

KIND = "sqs"
WAIT_SECONDS = 20  # SQS's longest long poll: fewest requests while the queue is quiet
MAX_MESSAGES = 10  # SQS's most per receive
VISIBILITY_TIMEOUT = 300  # seconds a received message stays ours; a pass must end within it
MAX_IN_FLIGHT = 100  # batches awaiting their pass; past it, wait before receiving more
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
STEP = 0.1  # seconds between looks at stop, the poll and the tickets


class Ticket(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class _Batch:
    """Received messages whose deletion waits for one ticket."""

    ticket: Ticket
    deadline: float
    receipts: list[tuple[str, str]] = field(default_factory=list)  # (message id, handle)


class SqsConsumer:
    """Consume `queue_url` for one source; `start()`, then `stop()`.

    `client` is a boto3 SQS client whose read timeout exceeds `wait_seconds`. `hint(keys)`
    records the keys for the source's loop, wakes it and returns the ticket the loop sets
    after its next pass (`Hints.add`). `source` is the metrics label, `<namespace>/<name>`.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        source: str,
        bucket: str,
        layout: Layout,
        hint: Callable[[set[str]], Ticket],
        wait_seconds: int = WAIT_SECONDS,
        visibility_timeout: int = VISIBILITY_TIMEOUT,
        max_messages: int = MAX_MESSAGES,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._client, self._queue_url = client, queue_url
        self._source, self._bucket, self._layout, self._hint = source, bucket, layout, hint
        self._wait, self._visibility, self._max = wait_seconds, visibility_timeout, max_messages
        self._backoff_max = backoff_max
        # Give a ticket up this long before its messages turn visible again.
        self._patience = visibility_timeout - min(10.0, visibility_timeout * 0.25)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{source}", daemon=True)
        self._batches: list[_Batch] = []
        read_timeout = getattr(getattr(client, "meta", None), "config", None)
        read_timeout = getattr(read_timeout, "read_timeout", None)
        if isinstance(read_timeout, int | float) and read_timeout <= wait_seconds:
            log.warning(
                "%s: the SQS client's read timeout (%g s) ends the %d s long poll early; "
                "give it more than that",
                source,
                read_timeout,
                wait_seconds,
            )

    def start(self) -> SqsConsumer:
        metrics.init_event_source(self._source, KIND)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopped.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        log.info("consuming bucket events of %s from %s", self._source, self._queue_url)
        first = min(BACKOFF_FIRST, self._backoff_max)
        pause, resume_at = first, 0.0
        poll: _Poll | None = None
        while not self._stopped.is_set():
            self._guarded(self._settle)
            if poll is None:
                if time.monotonic() >= resume_at and len(self._batches) < MAX_IN_FLIGHT:
                    poll = _Poll(self._receive)
                else:
                    self._stopped.wait(STEP)
                    continue
            if not poll.done.wait(STEP):
                continue
            finished, poll = poll, None
            if finished.error is not None:
                self._failed("ReceiveMessage", finished.error, pause)
                resume_at = time.monotonic() + pause
                pause = min(pause * 2, self._backoff_max)
                continue
            pause = first
            self._guarded(self._take, finished.messages)
        # Batches still waiting are left to SQS: a delete now could hold stop() up.
        log.info("stopped consuming bucket events of %s", self._source)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """A bug in one step must not end the source's events: log it and go on."""
        try:
            step(*args)
        except Exception:
            log.exception("%s: handling SQS messages failed", self._source)

    def _receive(self) -> list[dict[str, Any]]:
        answer = self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._max,
            WaitTimeSeconds=self._wait,
            VisibilityTimeout=self._visibility,
        )
        return list(answer.get("Messages", []))

    def _take(self, messages: list[dict[str, Any]]) -> None:
        """Hint what the messages name; delete at once those that need no pass."""
        now_done: list[tuple[str, str]] = []
        waiting: list[tuple[str, str]] = []
        keys: set[str] = set()
        for message in messages:
            receipt = (str(message.get("MessageId", "")), str(message["ReceiptHandle"]))
            try:
                events = bucketevents.parse(str(message.get("Body", "")).encode())
            except bucketevents.MalformedEvent as e:
                metrics.EVENTS_REJECTED.labels(
                    source=self._source, kind=KIND, reason="Malformed"
                ).inc()
                log.warning(
                    "%s: SQS message %s is not a bucket event, deleting it: %s",
                    self._source,
                    receipt[0],
                    e,
                )
                now_done.append(receipt)
                continue
            metrics.EVENTS_RECEIVED.labels(source=self._source, kind=KIND).inc()
            found = bucketevents.hint_keys(events, self._bucket, self._layout)
            (waiting if found else now_done).append(receipt)
            keys |= found
        if keys:
            try:
                ticket = self._hint(keys)
            except Exception:
                log.exception("%s: recording a hint failed; SQS will deliver again", self._source)
            else:
                deadline = time.monotonic() + self._patience
                self._batches.append(_Batch(ticket, deadline, waiting))
        self._delete(now_done)

    def _settle(self) -> None:
        """Delete the batches whose pass has run; give up those past their deadline."""
        if not self._batches:
            return
        now, handled, kept = time.monotonic(), [], []
        for batch in self._batches:
            if batch.ticket.is_set():
                handled.extend(batch.receipts)
            elif now >= batch.deadline:
                log.debug(
                    "%s: no pass in time for %d messages; SQS will deliver them again",
                    self._source,
                    len(batch.receipts),
                )
            else:
                kept.append(batch)
        self._batches = kept
        self._delete(handled)

    def _delete(self, receipts: list[tuple[str, str]]) -> None:
        for start in range(0, len(receipts), 10):  # SQS's most per batch
            chunk = receipts[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, (_, h) in enumerate(chunk)]
            try:
                answer = self._client.delete_message_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )
            except Exception as e:
                self._failed("DeleteMessageBatch", e)
                continue
            for failure in answer.get("Failed", []):
                metrics.EVENTS_ERRORS.labels(
                    source=self._source, kind=KIND, reason="DeleteFailed"
                ).inc()
                log.warning(
                    "%s: SQS did not delete a message (%s: %s); it will be delivered again",
                    self._source,
                    failure.get("Code"),
                    failure.get("Message"),
                )

    def _failed(self, operation: str, error: BaseException, pause: float | None = None) -> None:
        reason = classify(error)
        metrics.EVENTS_ERRORS.labels(source=self._source, kind=KIND, reason=reason).inc()
        retry = f"; retrying in {pause:g} s" if pause is not None else ""
        log.warning(
            "%s: SQS %s on %s failed (%s: %s)%s",
            self._source,
            operation,
            self._queue_url,
            reason,
            error,
            retry,
        )


class _Poll:
    """One receive in a helper thread, so that the consumer can stop while it waits."""

    def __init__(self, receive: Callable[[], list[dict[str, Any]]]) -> None:
        self.done = threading.Event()
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._receive = receive
        threading.Thread(target=self._run, name="sqs-poll", daemon=True).start()

    def _run(self) -> None:
        try:
            self.messages = self._receive()
        except Exception as e:
            self.error = e
        finally:
            self.done.set()


__all__ = ["KIND", "WAIT_SECONDS", "SqsConsumer", "Ticket"]
