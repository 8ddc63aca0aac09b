"""Hints from bucket events, waiting per source for the loop's next pass; in memory only.

An event (HTTP push or SQS) adds the keys it names; the source's loop takes everything pending
at the start of a pass and, once the pass is over, marks the tickets it took as done. A ticket
done therefore means: a whole pass that began after the hint was added has finished, so its
listing of pending/ saw the object (the store sends the event after the object exists). That is
what the SQS consumer waits for before it deletes a message.

Hints coalesce: the keys are one set per source, and every hint added between two passes shares
one ticket, so a burst of thousands of duplicate events is one set and one ticket. After a
restart this is empty; polling and SQS's redelivery cover what was lost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from videopipe_operator.coordination import SourceKey

MAX_KEYS = 100_000  # pending keys kept per source; past it the pass's listing still finds them


class Ticket:
    """Set once a pass that took this hint has finished."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def set(self) -> None:
        self._event.set()


class Hints:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._guard = threading.Lock()
        self._keys: dict[SourceKey, set[str]] = {}
        self._tickets: dict[SourceKey, Ticket] = {}
        self._max_keys = max_keys

    def add(self, source: SourceKey, keys: Iterable[str]) -> Ticket:
        """Record keys for the source's next pass; the ticket is shared until that pass takes it."""
        with self._guard:
            pending = self._keys.setdefault(source, set())
            for key in keys:
                if len(pending) >= self._max_keys:
                    break
                pending.add(key)
            ticket = self._tickets.get(source)
            if ticket is None:
                ticket = self._tickets[source] = Ticket()
            return ticket

    def take(self, source: SourceKey) -> tuple[set[str], list[Ticket]]:
        """Everything pending for the source (called at the start of a pass); empties it."""
        with self._guard:
            keys = self._keys.pop(source, set())
            ticket = self._tickets.pop(source, None)
            return keys, [ticket] if ticket is not None else []

    @staticmethod
    def done(tickets: Iterable[Ticket]) -> None:
        """The pass that took these tickets has finished (call it only after a pass that ran)."""
        for ticket in tickets:
            ticket.set()

    def pending(self, source: SourceKey) -> bool:
        with self._guard:
            return source in self._tickets

    def forget(self, source: SourceKey) -> None:
        """Drop a deleted source's hints; their waiters time out and SQS redelivers."""
        with self._guard:
            self._keys.pop(source, None)
            self._tickets.pop(source, None)


__all__ = ["MAX_KEYS", "Hints", "Ticket"]
