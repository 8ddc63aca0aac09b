"""Benchmark: dispatch latency, upload to worker Job, with bucket events against polling.

What a user waits for before anything happens to an upload: the time from `put_object`
returning to the worker Job existing in the cluster. Three VideoSources, each with its own
bucket and `pollIntervalSeconds` 60, served by ONE `videopipe operator` process in one run:

  polling  no events: `pending/` is listed every 60 s (the baseline);
  sqs      `events.sqs`: the bucket notifies an SQS queue (moto's S3 delivers the
           `s3:ObjectCreated:*` notification to moto's SQS), which the operator long-polls;
  push     `events.http`: the benchmark itself POSTs a MinIO-style event to the operator's
           events port right after each upload, standing in for MinIO's webhook target.

Real: the control plane (`tests.cluster.harness.Cluster`, etcd, kube-apiserver, controllers,
scheduler), the CRDs from `crds/`, the operator process, moto (S3 and SQS over HTTP). No nodes
are registered (`Cluster(nodes=[])`), so the Jobs' pods are never run: what is measured is
dispatch alone, with no transcription competing for the CPU; the uploads are a few KB of random
bytes named like videos. A thread watches the namespace's Jobs and records when each is first
seen; latency = first seen - the upload's `put_object` return, both on this machine's clock.

Uploads are spaced by exponential gaps (`--gap` mean, seeded), and at each step every source
gets one upload, in random order: each source gets `--uploads` uploads in about
`--uploads x --gap` seconds, and the polling source sees them at random phases of its interval.
Polling is what the operator does without events, which is more than a timer: every change of
one of a source's Jobs wakes its loop, and a pass with no event hints in hand lists `pending/`
in full, so a pass that created Jobs is followed within about a second by another listing that
finds what was uploaded meanwhile. The second table counts the listings (LIST requests) and how
each VideoJob was found: an event source's Job wake-ups list too, so it may find an upload by
listing before its event is handled (`via poll`).

    .venv/bin/python bench/dispatch.py [--uploads 50] [--gap 2.5] [--seed 13] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
CODE = [ROOT / part for part in ("common", "operator", "runner", "worker")]
for _path in reversed([ROOT, *CODE]):  # this checkout's code, not the venv's editable install
    sys.path.insert(0, str(_path))

import logging  # noqa: E402

import boto3  # noqa: E402
from kubernetes import client, watch  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from videopipe.s3 import make_client  # noqa: E402
from videopipe_operator.constants import (  # noqa: E402
    ANNOTATION_KEY,
    LABEL_MANAGED_BY,
    LABEL_SOURCE,
    MANAGER,
)

from tests.cluster.harness import Cluster, unless_gone, wait_for  # noqa: E402
from tests.e2e.conftest import Operator  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

GROUP, VERSION = "videopipe.dev", "v1alpha1"
WORKER_IMAGE = "ghcr.io/videopipe/videopipe-worker:bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
KINDS = {"polling": "polling", "sqs": "SQS events", "push": "HTTP push events"}
BASELINE = "polling"
PUSH_SECRET, PUSH_KEY = "push-token", "token"
Json = dict[str, Any]


@dataclass
class Source:
    """One VideoSource of the run: its bucket, and when each of its uploads landed."""

    name: str
    bucket: str
    uploaded: dict[str, float] = field(default_factory=dict)  # key -> epoch s after put


class JobWatch(threading.Thread):
    """Records when each of the operator's Jobs is first seen, by (source, S3 key).

    Resumes from the last resourceVersion when a watch ends, so no Job is first seen late by a
    re-list; a 410 (too old) re-lists, which only matters if it happens mid-run (it is counted).
    """

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(name="job-watch", daemon=True)
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.seen: dict[tuple[str, str], float] = {}
        self.relists = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            self._follow()
        except BaseException as e:  # the main thread reports it rather than waiting in vain
            self.error = e

    def _follow(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            self._watch = watch.Watch()
            kwargs: Json = {
                "label_selector": f"{LABEL_MANAGED_BY}={MANAGER}",
                "timeout_seconds": 30,
                "allow_watch_bookmarks": True,
            }
            if version:
                kwargs["resource_version"] = version
            try:
                for event in self._watch.stream(
                    self.batch.list_namespaced_job, self.namespace, **kwargs
                ):
                    now = time.time()
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(event["object"], now)
            except client.ApiException as e:
                if e.status != 410:
                    raise
                self._watch.resource_version, self.relists = None, self.relists + 1
            version = self._watch.resource_version  # the client follows it, bookmarks too

    def _record(self, job: client.V1Job, now: float) -> None:
        source = (job.metadata.labels or {}).get(LABEL_SOURCE, "")
        key = (job.metadata.annotations or {}).get(ANNOTATION_KEY, "")
        with self._lock:
            self.seen.setdefault((source, key), now)

    def first_seen(self, source: str, key: str) -> float | None:
        with self._lock:
            return self.seen.get((source, key))

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()


def scrape(op: Operator) -> str:
    return op.get("/metrics", port=op.metrics_port)[1]


def start_operator(cluster: Cluster, namespace: str, workdir: Path) -> Operator:
    """`videopipe operator` for the namespace, from this checkout's code, until /readyz is 200."""
    log = workdir / "operator.log"
    health, metrics_port, events_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        **CREDENTIALS,
        "PYTHONPATH": os.pathsep.join(str(p) for p in CODE),
        "KUBECONFIG": str(cluster.kubeconfig),
        "VIDEOPIPE_WORKER_IMAGE": WORKER_IMAGE,
        "VIDEOPIPE_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "videopipe", "operator", "--namespace", namespace]
    command += ["--standalone", "--health-port", str(health), "--metrics-port", str(metrics_port)]
    command += ["--events-port", str(events_port), "--bind", "127.0.0.1"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir
        )
    op = Operator(process, log, health, metrics_port, events_port)
    wait_for(
        lambda: process.poll() is not None or op.get("/readyz")[0] == 200,
        timeout=60,
        message="operator ready",
    )
    if process.poll() is not None:
        raise SystemExit(f"operator exited at start, see {log}")
    return op


def create_source(cluster: Cluster, namespace: str, source: Source, endpoint: str, **extra: Any):
    spec: Json = {
        "bucket": source.bucket,
        "endpoint": endpoint,
        "region": REGION,
        "credentialsSecret": "s3-credentials",
        "pollIntervalSeconds": 60,
        "maxConcurrentJobs": 1000,
        "queueWindow": 100,
        "accelerator": {"policy": "cpu"},
        "worker": {"image": WORKER_IMAGE, "summary": False},
        **extra,
    }
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoSource",
        "metadata": {"name": source.name},
        "spec": spec,
    }
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "videosources", body
    )


def secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
    cluster.core.create_namespaced_secret(namespace, body)


def sqs_queue(endpoint: str, s3: Any, bucket: str) -> tuple[Any, str]:
    """A moto queue that `bucket` notifies of every creation under pending/."""
    sqs = boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    url = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "pending/"}]}},
                }
            ]
        },
    )
    return sqs, url


def push(op: Operator, namespace: str, source: Source, key: str, token: str) -> int:
    """What MinIO's webhook target sends for one upload; the operator's HTTP status."""
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": source.bucket}, "object": {"key": quote(key)}},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{op.events_port}/events/{namespace}/{source.name}",
        data=json.dumps({"EventName": record["eventName"], "Records": [record]}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def sample(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition; 0 if absent."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match:
            have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(have.get(k) == v for k, v in labels.items()):
                return float(match.group(2))
    return 0.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def wait_first_pass(cluster: Cluster, namespace: str, names: list[str]) -> None:
    custom = client.CustomObjectsApi(cluster.api)

    def polled() -> bool:
        for name in names:
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "videosources", name
            )
            if not (body.get("status") or {}).get("lastPollTime"):
                return False
        return True

    wait_for(polled, timeout=90, interval=0.5, message="every source's first pass")


def run(args: argparse.Namespace, workdir: Path) -> Json:
    rng = random.Random(args.seed)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's log line per request
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    cluster: Cluster | None = None
    op: Operator | None = None
    jobs: JobWatch | None = None
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        s3 = make_client(endpoint, access_key="testing", secret_key="testing")
        sources = {kind: Source(kind, f"bench-{kind}-{uuid.uuid4().hex[:8]}") for kind in KINDS}
        for source in sources.values():
            s3.create_bucket(Bucket=source.bucket)
        _, queue_url = sqs_queue(endpoint, s3, sources["sqs"].bucket)

        print("starting the control plane (no nodes)...", file=sys.stderr, flush=True)
        cluster = Cluster(nodes=[]).start()
        cluster.apply(ROOT / "crds")
        cluster.create_namespace(namespace)
        secret(cluster, namespace, "s3-credentials", CREDENTIALS)
        token = secrets.token_urlsafe(24)
        secret(cluster, namespace, PUSH_SECRET, {PUSH_KEY: token})
        create_source(cluster, namespace, sources["polling"], endpoint)
        events_sqs = {"sqs": {"queueUrl": queue_url, "endpoint": endpoint, "region": REGION}}
        create_source(cluster, namespace, sources["sqs"], endpoint, events=events_sqs)
        events_http = {"http": {"tokenSecretRef": {"name": PUSH_SECRET, "key": PUSH_KEY}}}
        create_source(cluster, namespace, sources["push"], endpoint, events=events_http)

        jobs = JobWatch(cluster.api, namespace)
        jobs.start()
        op = start_operator(cluster, namespace, workdir)
        wait_first_pass(cluster, namespace, list(sources))
        # The receiver and the consumer start after a source's first pass: wait for both.
        probe = "pending/never-uploaded.mp4"
        wait_for(
            lambda: push(op, namespace, sources["push"], probe, token) < 300,
            timeout=30,
            message="the push receiver knows the source",
        )
        wait_for(
            lambda: f'kind="sqs",source="{namespace}/sqs"' in scrape(op),
            timeout=30,
            message="the SQS consumer running",
        )

        print(
            f"uploading {args.uploads} per source, mean gap {args.gap} s...",
            file=sys.stderr,
            flush=True,
        )
        body = os.urandom(4096)
        push_errors = 0
        upload_start = time.time()
        for i in range(args.uploads):
            for kind in rng.sample(list(KINDS), len(KINDS)):
                source, key = sources[kind], f"pending/clip-{i:03d}.mp4"
                s3.put_object(Bucket=source.bucket, Key=key, Body=body)
                source.uploaded[key] = time.time()
                if kind == "push" and push(op, namespace, source, key, token) >= 300:
                    push_errors += 1
            time.sleep(rng.expovariate(1 / args.gap))
        last_upload = time.time()

        def all_seen() -> bool:
            if jobs.error is not None:
                raise RuntimeError("the Job watch failed") from jobs.error
            return all(
                jobs.first_seen(s.name, key) is not None
                for s in sources.values()
                for key in s.uploaded
            )

        try:
            wait_for(all_seen, timeout=60 + args.margin, interval=0.5, message="a Job per upload")
        except TimeoutError as e:
            print(f"warning: {e}", file=sys.stderr)
        metrics_text = scrape(op)

        rows: dict[str, Json] = {}
        for kind, source in sources.items():
            label = f"{namespace}/{source.name}"
            latencies = [
                seen - at
                for key, at in source.uploaded.items()
                if (seen := jobs.first_seen(source.name, key)) is not None
            ]
            rows[kind] = {
                "source": KINDS[kind],
                "uploads": len(source.uploaded),
                "jobs": len(latencies),
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "max": max(latencies, default=float("nan")),
                "discovered": {
                    via: sample(
                        metrics_text, "videopipe_videojobs_discovered_total", source=label, via=via
                    )
                    for via in ("event", "poll")
                },
                "listings": sample(
                    metrics_text,
                    "videopipe_s3_requests_total",
                    source=label,
                    operation="ListObjectsV2",
                ),
                "latencies": latencies,
            }
        return {
            "uploads_per_source": args.uploads,
            "mean_gap_seconds": args.gap,
            "seed": args.seed,
            "poll_interval_seconds": 60,
            "upload_seconds": last_upload - upload_start,
            "push_errors": push_errors,
            "watch_relists": jobs.relists,
            "operator_log": str(op.log),
            "sources": rows,
        }
    finally:
        if jobs is not None:
            jobs.stop()
        if op is not None:
            op.stop()
        if cluster is not None:
            try:
                for plural in ("videojobs", "videosources"):
                    cluster.drop_finalizers(GROUP, VERSION, plural, namespace)
                unless_gone(cluster.delete_jobs, namespace)
                cluster.delete_namespace(namespace, wait=True, timeout=60)
            finally:
                cluster.stop(check=False)
        moto.stop()


def report(result: Json) -> None:
    rows = result["sources"]
    base = rows[BASELINE]
    print(
        f"\nDispatch latency, upload to worker Job first seen: {result['uploads_per_source']} "
        f"uploads per source over {result['upload_seconds']:.0f} s (exponential gaps, mean "
        f"{result['mean_gap_seconds']} s), pollIntervalSeconds 60, one operator, "
        "no nodes (pods never run)\n"
    )
    print("| source | n | p50 s | p90 s | p99 s | max s | p50 speed-up | p99 speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows.values():
        n = f"{row['jobs']}" + (f" of {row['uploads']}" if row["jobs"] < row["uploads"] else "")
        print(
            f"| {row['source']} | {n} | {row['p50']:.2f} | {row['p90']:.2f} | {row['p99']:.2f} "
            f"| {row['max']:.2f} | {base['p50'] / row['p50']:.1f}x | "
            f"{base['p99'] / row['p99']:.1f}x |"
        )
    print("\nHow each VideoJob was found (videopipe_videojobs_discovered_total), and listings\n")
    print("| source | via event | via poll | listings of pending/ |")
    print("|---|---:|---:|---:|")
    for row in rows.values():
        found = row["discovered"]
        print(
            f"| {row['source']} | {found['event']:.0f} | {found['poll']:.0f} "
            f"| {row['listings']:.0f} |"
        )
    if result["push_errors"] or result["watch_relists"]:
        print(
            f"\npush errors: {result['push_errors']}, Job watch re-lists: {result['watch_relists']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=50, help="uploads per source")
    parser.add_argument("--gap", type=float, default=2.5, help="mean seconds between steps")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--margin", type=float, default=30, help="seconds past one poll interval to wait"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="videopipe-bench-dispatch-"))
    result = run(args, workdir)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\noperator log: {result['operator_log']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
