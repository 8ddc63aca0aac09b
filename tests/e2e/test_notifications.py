"""Webhooks on outcomes, from the real operator: signed, retried with one id, owed across a kill.

Real: the operator process on the control plane, the workers, moto, and webhook receivers on
127.0.0.1 that check every request as a receiver would (`standardwebhooks`; see
`tests/support/receiver.py`). Timeouts and the give-up bound are made short through the
operator's own settings (`VIDEOPIPE_WEBHOOK_*`), so that "abandoned" takes seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Videopipe
from tests.support.receiver import HANG, SECRET, Receiver

pytestmark = pytest.mark.cluster


@pytest.fixture
def receivers() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(*answers: Any, default: Any = (204, {}, b""), host: str = "127.0.0.1") -> Receiver:
        made.append(Receiver(list(answers), default=default, host=host))
        return made[-1]

    yield make
    for one in made:
        one.close()


def hook(receiver: Receiver, *events: str, path: str = "/hooks") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "url": receiver.url + path,
        "secretRef": {"name": "hooks", "key": "secret"},
    }
    if events:
        spec["events"] = list(events)
    return spec


def entries(vj: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((vj or {}).get("status") or {}).get("notifications", {}).values())


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_each_outcome_is_delivered_signed_and_a_failed_try_is_retried_with_the_same_id(
    videopipe: Videopipe, talk_videos: dict[str, Path], corrupt_video: Path, receivers
) -> None:
    done = receivers((500, {}, b"oops"), (500, {}, b"oops"))  # then 204
    everything = receivers()
    videopipe.create_secret("hooks", secret=SECRET)
    videopipe.create_source(
        notifications=[hook(done), hook(everything, "Started", "Succeeded", "Failed")]
    )
    op = videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])
    videopipe.upload("corrupt.mp4", corrupt_video)

    def delivered() -> bool:
        vjs = videopipe.videojobs()
        owed = [e for vj in vjs for e in entries(vj)]
        return len(vjs) == 2 and len(owed) == 6 and all(e["state"] == "Delivered" for e in owed)

    videopipe.wait(delivered, timeout=240, message="every webhook delivered")
    ids = [r.id for r in done.requests]
    assert len(done.requests) == 4 and len(set(ids)) == 2, ids  # two events, two tries retried
    by_type = {e["type"]: e for e in done.events()}
    assert sorted(by_type) == ["dev.videopipe.video.failed", "dev.videopipe.video.succeeded"]
    ok = by_type["dev.videopipe.video.succeeded"]
    vj = videopipe.videojob_for("hello.mp4")
    assert (
        ok["source"]
        == f"/apis/videopipe.dev/v1alpha1/namespaces/{videopipe.namespace}/videosources/talks"
    )
    assert ok["subject"] == "hello.mp4"
    assert ok["data"]["bucket"] == videopipe.bucket and ok["data"]["attempt"] == 1
    assert ok["data"]["results"] == vj["status"]["results"]
    assert ok["data"]["audioSeconds"] > 1 and ok["data"]["language"] == "en"
    failed = by_type["dev.videopipe.video.failed"]
    assert failed["subject"] == "corrupt.mp4" and failed["data"]["reason"] in (
        "Corrupt",
        "Truncated",
        "NotMedia",
    )
    to_done = [
        e for one in videopipe.videojobs() for e in entries(one) if e["url"] == done.url + "/hooks"
    ]
    assert sum(e["tries"] for e in to_done) == 4  # the two 500s fell on one or both of them
    assert all(e.get("event") is None for e in to_done)
    for entry in to_done:
        if entry["tries"] > 1:
            assert entry["lastError"].startswith("receiver answered 500"), entry
    types = sorted(e["type"].rsplit(".", 1)[1] for e in everything.events())
    assert types == ["failed", "started", "started", "succeeded"]
    metrics = op.get("/metrics", port=op.metrics_port)[1]
    label = f"{videopipe.namespace}/talks"
    assert metric(metrics, "videopipe_notifications_total", source=label, outcome="retried") == 2
    assert metric(metrics, "videopipe_notifications_total", source=label, outcome="delivered") == 6


def test_a_dead_receiver_is_abandoned_and_never_holds_up_the_others(
    videopipe: Videopipe, talk_videos: dict[str, Path], receivers
) -> None:
    dead = receivers(default=HANG)
    good = receivers()
    videopipe.create_secret("hooks", secret=SECRET)
    videopipe.create_source(notifications=[hook(dead), hook(good)])
    op = videopipe.start_operator(
        VIDEOPIPE_WEBHOOK_TIMEOUT_SECONDS="1", VIDEOPIPE_WEBHOOK_GIVE_UP_SECONDS="6"
    )
    names = ["hello", "weather", "numbers"]
    for name in names:
        videopipe.upload(f"{name}.mp4", talk_videos[name])
    videopipe.wait(
        lambda: sorted(e["subject"] for e in good.events()) == sorted(f"{n}.mp4" for n in names),
        timeout=240,
        message="the good receiver told of every video",
    )
    # While the good one was told of every video, the dead one still held deliveries open.
    assert any(e["state"] == "Pending" for vj in videopipe.videojobs() for e in entries(vj)) or (
        len(dead.requests) >= 3
    )

    def abandoned() -> list[dict[str, Any]]:
        owed = [
            e for vj in videopipe.videojobs() for e in entries(vj) if e["url"].startswith(dead.url)
        ]
        return owed if len(owed) == 3 and all(e["state"] == "Abandoned" for e in owed) else []

    for entry in videopipe.wait(abandoned, timeout=120, message="dead receiver abandoned"):
        assert "no answer from" in entry["lastError"] and "within 1 s" in entry["lastError"]
        assert entry["tries"] >= 2 and entry.get("event") is None
    events = videopipe.events("NotificationAbandoned")
    assert len(events) == 3 and all(e.type == "Warning" for e in events)
    label = f"{videopipe.namespace}/talks"
    metrics = op.get("/metrics", port=op.metrics_port)[1]
    assert metric(metrics, "videopipe_notifications_total", source=label, outcome="abandoned") == 3
    assert op.get("/healthz")[0] == 200


def test_a_delivery_owed_when_the_operator_is_killed_is_made_after_the_restart(
    videopipe: Videopipe, talk_videos: dict[str, Path], receivers
) -> None:
    receiver = receivers(HANG, default=(204, {}, b""))  # the first try never gets an answer
    videopipe.create_secret("hooks", secret=SECRET)
    videopipe.create_source(notifications=[hook(receiver)])
    first = videopipe.start_operator(VIDEOPIPE_WEBHOOK_TIMEOUT_SECONDS="30")
    videopipe.upload("hello.mp4", talk_videos["hello"])
    videopipe.wait(lambda: receiver.requests, timeout=240, message="the first try arrived")
    first.kill()  # SIGKILL while the try is in flight: settled, not yet delivered
    vj = videopipe.videojob_for("hello.mp4")
    assert vj["status"]["phase"] == "Succeeded"
    assert [e["state"] for e in entries(vj)] == ["Pending"]
    videopipe.start_operator()
    videopipe.wait(
        lambda: [e["state"] for e in entries(videopipe.videojob_for("hello.mp4"))] == ["Delivered"],
        timeout=60,
        message="delivered after the restart",
    )
    assert len(receiver.requests) == 2
    one, two = receiver.requests
    assert one.id == two.id and one.body == two.body  # the same event, signed afresh
    assert two.event()["type"] == "dev.videopipe.video.succeeded"


def test_a_videojob_is_pruned_only_once_its_deliveries_are_made(
    videopipe: Videopipe, talk_videos: dict[str, Path], receivers
) -> None:
    receiver = receivers(*[(503, {"Retry-After": "1"}, b"")] * 3)
    videopipe.create_secret("hooks", secret=SECRET)
    videopipe.create_source(
        notifications=[hook(receiver)],
        jobs={"successfulHistoryLimit": 0, "ttlSecondsAfterFinished": 600},
    )
    videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])
    videopipe.wait(lambda: len(receiver.requests) >= 2, timeout=240, message="two tries")
    vj = videopipe.videojob_for("hello.mp4")
    assert vj is not None and vj["status"]["phase"] == "Succeeded"  # kept: a delivery is owed
    videopipe.wait(lambda: len(receiver.requests) == 4, timeout=60, message="the fourth try")
    videopipe.wait(
        lambda: videopipe.videojob_for("hello.mp4") is None, timeout=60, message="pruned"
    )
    assert receiver.requests[-1].event()["subject"] == "hello.mp4"


def test_a_webhook_to_a_denied_address_is_refused_before_connecting(
    videopipe: Videopipe, talk_videos: dict[str, Path], receivers
) -> None:
    # 127.0.0.2 stands for a metadata server or the API server: a live receiver there, denied
    # by the operator's setting, must never be connected to.
    inside = receivers(host="127.0.0.2")
    videopipe.create_secret("hooks", secret=SECRET)
    videopipe.create_source(notifications=[hook(inside)])
    videopipe.start_operator(VIDEOPIPE_WEBHOOK_DENY_CIDRS="127.0.0.2/32")
    videopipe.upload("hello.mp4", talk_videos["hello"])

    def refused() -> list[dict[str, Any]]:
        owed = entries(videopipe.videojob_for("hello.mp4"))
        return owed if owed and owed[0]["state"] == "Abandoned" else []

    [entry] = videopipe.wait(refused, timeout=240, message="the delivery refused")
    assert "127.0.0.2" in entry["lastError"] and "denied network" in entry["lastError"]
    assert inside.requests == []
    assert videopipe.events("NotificationAbandoned")
