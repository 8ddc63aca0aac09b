"""Lock objects and leases against a real S3 server (moto honours If-None-Match and If-Match).

The claim must be exclusive under a race, a lease must be taken over only after it expired on
the store's clock, a holder that lost its lease must notice and must not delete the new
holder's lock, and the start-up probe must tell a store that honours the conditions from one
that ignores them.
"""

from __future__ import annotations

import threading
import time

import pytest
from videopipe.layout import Layout
from videopipe.s3 import make_client
from videopipe.store import Store
from videopipe_runner.claims import Claims, LeaseLost
from videopipe_runner.policy import Support

from tests.runner.helpers import keys, wait_for
from tests.support.s3proxy import S3Proxy


@pytest.fixture
def store(s3, bucket: str) -> Store:
    return Store(s3, bucket, Layout("videos"))


def claims(store: Store, lease: float = 60.0) -> Claims:
    """A runner's view of the locks (each call: a different owner)."""
    return Claims(store, lease_seconds=lease)


def test_exactly_one_of_sixteen_racers_wins(store: Store) -> None:
    racers = [claims(store) for _ in range(16)]
    barrier = threading.Barrier(len(racers))
    won: list[Claims] = []

    def race(c: Claims) -> None:
        barrier.wait()
        if c.acquire("talks/keynote.mp4") is not None:
            won.append(c)

    threads = [threading.Thread(target=race, args=(c,)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    holder = racers[0].inspect("talks/keynote.mp4")
    assert holder is not None and holder.owner == won[0].owner and not holder.expired


def test_lock_lives_beside_the_folders_and_release_removes_it(
    s3, bucket: str, store: Store
) -> None:
    c = claims(store)
    lease = c.acquire("équipe/réunion.mp4")
    assert lease is not None
    assert keys(s3, bucket) == {"videos/.videopipe/locks/équipe/réunion.mp4"}
    assert c.held() == [lease]
    c.release(lease)
    assert keys(s3, bucket) == set() and c.held() == []


def test_renewal_keeps_others_out_and_changes_the_etag(store: Store) -> None:
    # A lease of 5 s against a 0.5 s heartbeat: a loaded machine may stall a renewal by seconds.
    mine, other = claims(store, lease=5), claims(store, lease=5)
    lease = mine.acquire("a.mp4")
    assert lease is not None
    first = lease.etag
    holder = other.inspect("a.mp4")
    assert holder is not None and holder.lease_seconds == 5
    # Renew at a heartbeat's pace for longer than the lease: the other runner never gets in.
    until = time.monotonic() + 6
    while time.monotonic() < until:
        mine.renew(lease)
        assert other.acquire("a.mp4") is None
        time.sleep(0.5)  # the heartbeat's period, not a wait for a condition
    assert lease.etag != first


def test_expired_lease_is_taken_over_and_the_old_holder_notices(s3, bucket, store) -> None:
    crashed, successor = claims(store, lease=2), claims(store, lease=30)
    stale = crashed.acquire("a.mp4")
    assert stale is not None
    assert successor.acquire("a.mp4") is None  # still live
    # Expiry is judged on the store's clock (Date minus Last-Modified), so wait for the store.
    wait_for("the lease to expire", lambda: successor.inspect("a.mp4").expired, timeout=30)
    lease = successor.acquire("a.mp4")
    assert lease is not None
    with pytest.raises(LeaseLost):
        crashed.renew(stale)
    assert stale.lost.is_set()
    crashed.release(stale)  # must not delete the successor's lock
    holder = successor.inspect("a.mp4")
    assert holder is not None and holder.owner == successor.owner
    successor.release(lease)
    assert keys(s3, bucket) == set()


def test_sweep_removes_only_expired_locks_of_paths_not_kept(s3, bucket, store) -> None:
    crashed, live = claims(store, lease=2), claims(store, lease=60)
    for path in ("gone.mp4", "in-processing.mp4"):
        assert crashed.acquire(path) is not None
    assert live.acquire("live.mp4") is not None
    me = claims(store)
    wait_for("the leases to expire", lambda: me.inspect("gone.mp4").expired, timeout=30)
    assert me.sweep(keep={"in-processing.mp4"}) == 1
    assert keys(s3, bucket, "videos/.videopipe/locks/") == {
        "videos/.videopipe/locks/in-processing.mp4",
        "videos/.videopipe/locks/live.mp4",
    }


def test_probe_finds_moto_honours_conditional_writes(s3, bucket: str, store: Store) -> None:
    assert claims(store).probe() is Support.HONOURED
    assert keys(s3, bucket) == set()  # the probe cleans up after itself


def test_probe_detects_a_store_that_ignores_them(bucket: str, unconditional: S3Proxy) -> None:
    store = Store(make_client(unconditional.url), bucket)
    assert claims(store).probe() is Support.IGNORED
    assert unconditional.dropped >= 2
