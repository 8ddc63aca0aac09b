"""Exclusive claims on videos: one lock object per video, held under a renewable lease.

Copy-then-delete is not a claim: several runners copying `pending/x` at once all "win" (S3 lets
every copy succeed; docs/architecture.md, "Measured facts"). A PUT with `If-None-Match: *` is:
of any number of racers exactly one gets 200, the rest 412. So a runner claims `<path>` by
creating `<prefix>.videopipe/locks/<path>` that way *before* it moves the video, and deletes the
lock only *after* the video reached its final folder (or went back to `pending/`). While it
holds the lock nobody else moves that path.

The lock is a lease, so that a crashed runner's videos are not stuck forever:

- Its body says who holds it (host, pid, a random owner id) and for how long (`leaseSeconds`).
  The holder rewrites it every quarter lease with `If-Match: <its ETag>`; the body changes every
  time (`renewedAt`), so its ETag does too. A 412 means someone took the lease over: the holder
  has lost the video and must stop touching it.
- A lock is expired when the store's clock says it has not been written for `leaseSeconds`:
  the answer's `Date` header minus the lock's `Last-Modified`, both stamped by the store, so the
  clocks of runners on different machines never matter. An expired lock is taken over with
  `If-Match: <the stale ETag>`, which again lets exactly one racer win.
- Release is a DELETE with `If-Match`, so a holder that lost its lease cannot delete the lock of
  the runner that took over.

`probe()` checks at start-up that the store really honours both conditions (moto, AWS S3 and
MinIO do; GCS's S3 interoperability documents neither for writes). Where it does not, the same
calls are made without conditions: locks still record who works on what and still let a restarted
runner resume, but two runners can both win a lock, so only one runner per bucket is safe and the
runner says so loudly.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from videopipe.s3errors import classify
from videopipe.s3errors import status as _status
from videopipe.store import Store, StoreError

from videopipe_runner import policy

log = logging.getLogger(__name__)

LOCKS_FOLDER = ".videopipe/locks/"
PROBES_FOLDER = ".videopipe/probes/"
MIN_LEASE_SECONDS = 2.0  # Last-Modified and Date have one-second resolution
LOST_STATUSES = frozenset({404, 409, 412})  # gone, a concurrent conditional write, precondition


class LeaseLost(Exception):
    """Another runner took the lease over (ours expired) or the lock vanished."""


@dataclass(eq=False)
class Lease:
    """A lock this runner holds. `etag` changes with every renewal."""

    path: str
    key: str
    etag: str
    seconds: float
    renewed: float = field(default_factory=time.monotonic)  # last successful write, monotonic
    lost: threading.Event = field(default_factory=threading.Event)
    released: bool = False
    mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class LockInfo:
    """A lock as read from the store, whoever holds it."""

    path: str
    etag: str
    owner: str
    host: str
    lease_seconds: float
    age_seconds: float  # on the store's clock

    @property
    def expired(self) -> bool:
        return policy.lease_expired(self.age_seconds, self.lease_seconds)


def new_owner_id() -> str:
    """Unique per runner process: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Claims:
    """Lock objects for one bucket root; thread-safe (the heartbeat renews while tasks run)."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        conditional: bool = True,
    ) -> None:
        self.store = store
        self.owner = owner or new_owner_id()
        self.lease_seconds = max(float(lease_seconds), MIN_LEASE_SECONDS)
        self.conditional = conditional  # False on stores found not to honour the headers
        self._held: dict[str, Lease] = {}
        self._mutex = threading.Lock()

    # -- keys --

    @property
    def locks_prefix(self) -> str:
        return f"{self.store.layout.prefix}{LOCKS_FOLDER}"

    def lock_key(self, path: str) -> str:
        return f"{self.locks_prefix}{path}"

    # -- probing the store --

    def probe(self) -> policy.Support:
        """Write one probe key three times to learn whether the store honours the conditions."""
        key = f"{self.store.layout.prefix}{PROBES_FOLDER}{uuid.uuid4().hex}"
        try:
            create = self._probe_put(key, IfNoneMatch="*")
            create_again = self._probe_put(key, IfNoneMatch="*")
            replace_stale = self._probe_put(key, IfMatch='"00000000000000000000000000000000"')
        finally:
            self.store.delete(key)
        return policy.probe_verdict(create, create_again, replace_stale)

    def _probe_put(self, key: str, **condition: str) -> int:
        try:
            self.store.client.put_object(
                Bucket=self.store.bucket, Key=key, Body=self.owner.encode(), **condition
            )
        except ClientError as e:
            status = _status(e)
            if status in policy.REJECTED_STATUSES or status == 412:
                return int(status)
            raise StoreError(classify(e), "PutObject", str(e)) from e
        except BotoCoreError as e:
            raise StoreError(classify(e), "PutObject", str(e)) from e
        return 200

    # -- claiming --

    def acquire(self, path: str) -> Lease | None:
        """Claim `path`: create its lock, or take over an expired one; None if someone holds it."""
        for _ in range(2):  # a lock released between our create and our read: create again
            lease = self._create(path)
            if lease is not None:
                return self._hold(lease)
            info = self.inspect(path)
            if info is None:
                continue
            if not info.expired:
                return None
            lease = self._replace(path, info.etag)
            if lease is not None:
                log.info(
                    "%s: took over the lock of %s (not renewed for %.0f s)",
                    path,
                    info.owner,
                    info.age_seconds,
                )
                return self._hold(lease)
            return None
        return None

    def inspect(self, path: str) -> LockInfo | None:
        """The lock on `path` as the store has it now, or None if there is none."""
        try:
            resp = self.store.client.get_object(Bucket=self.store.bucket, Key=self.lock_key(path))
            raw = resp["Body"].read()
        except ClientError as e:
            if _status(e) == 404:
                return None
            raise StoreError(classify(e), "GetObject", str(e)) from e
        except BotoCoreError as e:
            raise StoreError(classify(e), "GetObject", str(e)) from e
        body = _parse(raw)
        now = _server_time(resp) or datetime.now(UTC)
        modified = resp.get("LastModified") or now
        lease = body.get("leaseSeconds")
        return LockInfo(
            path=path,
            etag=str(resp.get("ETag", "")),
            owner=str(body.get("owner", "unknown")),
            host=str(body.get("host", "")),
            lease_seconds=float(lease) if isinstance(lease, int | float) else self.lease_seconds,
            age_seconds=(now - modified).total_seconds(),
        )

    def renew(self, lease: Lease) -> None:
        """Extend the lease; raises LeaseLost if it is no longer ours."""
        with lease.mutex:
            if lease.released:
                return
            if lease.lost.is_set():
                raise LeaseLost(lease.path)
            if self.conditional:
                etag = self._write(lease.path, IfMatch=lease.etag)
            else:
                info = self.inspect(lease.path)
                etag = None if info is None or info.owner != self.owner else self._write(lease.path)
            if etag is None:
                lease.lost.set()
                raise LeaseLost(lease.path)
            lease.etag, lease.renewed = etag, time.monotonic()

    def release(self, lease: Lease) -> None:
        """Delete the lock if it is still ours; never raises for a lost or missing lock."""
        with lease.mutex:
            if lease.released:
                return
            lease.released = True
            with self._mutex:
                self._held.pop(lease.path, None)
            if lease.lost.is_set():
                return
            key = self.lock_key(lease.path)
            if self.conditional:
                try:
                    self.store.client.delete_object(
                        Bucket=self.store.bucket, Key=key, IfMatch=lease.etag
                    )
                    return
                except ClientError as e:
                    if _status(e) in LOST_STATUSES:
                        return
                    if _status(e) not in policy.REJECTED_STATUSES:
                        raise StoreError(classify(e), "DeleteObject", str(e)) from e
                except BotoCoreError as e:
                    raise StoreError(classify(e), "DeleteObject", str(e)) from e
            info = self.inspect(lease.path)  # without conditions: look before deleting
            if info is not None and info.owner == self.owner:
                self.store.delete(key)

    def held(self) -> list[Lease]:
        with self._mutex:
            return list(self._held.values())

    def sweep(self, keep: set[str]) -> int:
        """Delete expired locks of paths not in `keep` (left by crashed runners); how many."""
        removed = 0
        paginator = self.store.client.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=self.store.bucket, Prefix=self.locks_prefix))
        except (ClientError, BotoCoreError) as e:
            raise StoreError(classify(e), "ListObjectsV2", str(e)) from e
        for page in pages:
            for item in page.get("Contents", []):
                path = item["Key"][len(self.locks_prefix) :]
                if not path or path in keep:
                    continue
                lease = self.acquire(path)  # only an expired lock can be acquired
                if lease is not None:
                    self.release(lease)
                    removed += 1
        return removed

    # -- writes --

    def _hold(self, lease: Lease) -> Lease:
        with self._mutex:
            self._held[lease.path] = lease
        return lease

    def _create(self, path: str) -> Lease | None:
        if not self.conditional:
            info = self.inspect(path)
            if info is not None and not info.expired:
                return None
            etag = self._write(path)
        else:
            etag = self._write(path, IfNoneMatch="*")
        return None if etag is None else self._lease(path, etag)

    def _replace(self, path: str, stale_etag: str) -> Lease | None:
        etag = self._write(path, IfMatch=stale_etag) if self.conditional else self._write(path)
        return None if etag is None else self._lease(path, etag)

    def _lease(self, path: str, etag: str) -> Lease:
        return Lease(path=path, key=self.lock_key(path), etag=etag, seconds=self.lease_seconds)

    def _write(self, path: str, **condition: str) -> str | None:
        """PUT the lock body; its new ETag, or None if a condition failed."""
        now = datetime.now(UTC)
        body = {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "path": path,
            "leaseSeconds": self.lease_seconds,
            "renewedAt": now.isoformat(timespec="microseconds"),
            "expiresAt": (now + timedelta(seconds=self.lease_seconds)).isoformat(
                timespec="seconds"
            ),
        }
        try:
            resp = self.store.client.put_object(
                Bucket=self.store.bucket,
                Key=self.lock_key(path),
                Body=json.dumps(body).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as e:
            if condition and _status(e) in LOST_STATUSES:
                return None
            raise StoreError(classify(e), "PutObject", str(e)) from e
        except BotoCoreError as e:
            raise StoreError(classify(e), "PutObject", str(e)) from e
        return str(resp.get("ETag", ""))


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _server_time(resp: dict[str, Any]) -> datetime | None:
    """The store's clock, from the answer's `Date` header."""
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return None
    try:
        return parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None


__all__ = [
    "LOCKS_FOLDER",
    "Claims",
    "Lease",
    "LeaseLost",
    "LockInfo",
    "new_owner_id",
]
