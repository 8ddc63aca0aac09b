"""Tests of the test cluster itself: that what the operator will rely on behaves as in Kubernetes.

Everything here goes through the real apiserver, controller-manager and scheduler; the only
stand-in is the kubelet, whose contract (status, exit codes, termination message, env, deletion)
is checked too. Every wait polls for a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from kubernetes import client, config

from tests.cluster.controlplane import port_open
from tests.cluster.harness import RESTRICTED_SECURITY_CONTEXT, Cluster, wait_for

pytestmark = pytest.mark.cluster

Json = dict[str, Any]


@pytest.fixture
def ns(cluster: Cluster):
    """A fresh namespace enforcing the `restricted` Pod Security level, deleted afterwards."""
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)


def container(script: str, **extra: Any) -> Json:
    return {
        "name": "main",
        "image": "python:3.11-slim",
        "command": ["python", "-c", script],
        "securityContext": RESTRICTED_SECURITY_CONTEXT,
        **extra,
    }


def job(name: str, script: str, *, pod: Json | None = None, **spec: Any) -> Json:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [container(script)], **(pod or {})}
            },
        },
    }


def job_condition(cluster: Cluster, ns: str, name: str, kind: str) -> client.V1JobCondition | None:
    j = cluster.batch.read_namespaced_job(name, ns)
    for c in j.status.conditions or []:
        if c.type == kind and c.status == "True":
            return c
    return None


def job_pods(cluster: Cluster, ns: str, name: str) -> list[client.V1Pod]:
    return cluster.core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items


def terminated(cluster: Cluster, ns: str, pod: str) -> client.V1ContainerStateTerminated | None:
    p = cluster.core.read_namespaced_pod(pod, ns)
    if p.status.phase not in ("Succeeded", "Failed"):
        return None
    return p.status.container_statuses[0].state.terminated


def test_pod_failure_policy_fails_job_at_once(cluster: Cluster, ns: str) -> None:
    spec = job(
        "bad-input",
        "import sys; sys.exit(3)",
        backoffLimit=6,
        podFailurePolicy={
            "rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    )
    cluster.batch.create_namespaced_job(ns, spec)
    failed = wait_for(lambda: job_condition(cluster, ns, "bad-input", "Failed"), 30)
    assert failed.reason == "PodFailurePolicy"
    assert cluster.batch.read_namespaced_job("bad-input", ns).status.failed == 1
    pods = job_pods(cluster, ns, "bad-input")
    assert len(pods) == 1
    state = pods[0].status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (3, "Error")


def test_exit_1_is_retried_up_to_backoff_limit(cluster: Cluster, ns: str) -> None:
    # The Job controller waits 10 s (not configurable) before the retry: one retry is enough.
    cluster.batch.create_namespaced_job(ns, job("flaky", "import sys; sys.exit(1)", backoffLimit=1))
    failed = wait_for(lambda: job_condition(cluster, ns, "flaky", "Failed"), 60)
    assert failed.reason == "BackoffLimitExceeded"
    assert cluster.batch.read_namespaced_job("flaky", ns).status.failed == 2
    assert len(job_pods(cluster, ns, "flaky")) == 2


def test_gpu_job_lands_on_gpu_node_and_plain_job_on_cpu_node(cluster: Cluster, ns: str) -> None:
    gpu_pod = {
        "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [
            container("print('gpu')", resources={"limits": {"nvidia.com/gpu": "1"}}),
        ],
    }
    cluster.batch.create_namespaced_job(ns, job("on-gpu", "", pod=gpu_pod))
    cluster.batch.create_namespaced_job(ns, job("on-cpu", "print('cpu')"))
    for name, node in [("on-gpu", "gpu-node"), ("on-cpu", "cpu-node")]:
        wait_for(lambda name=name: job_condition(cluster, ns, name, "Complete"), 30, message=name)
        (pod,) = job_pods(cluster, ns, name)
        assert pod.spec.node_name == node
        assert cluster.pod_log(ns, pod.metadata.name).strip().endswith(name[3:])


def test_gpu_pod_without_toleration_stays_pending(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "no-toleration"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [container("pass", resources={"limits": {"nvidia.com/gpu": "1"}})],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)

    def unschedulable() -> bool:
        p = cluster.core.read_namespaced_pod("no-toleration", ns)
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in p.status.conditions or []
        )

    wait_for(unschedulable, 60)
    assert cluster.core.read_namespaced_pod("no-toleration", ns).spec.node_name is None


def test_deleting_the_owner_garbage_collects_the_job(cluster: Cluster, ns: str) -> None:
    owner = cluster.core.create_namespaced_config_map(
        ns, {"metadata": {"name": "owner"}, "data": {}}
    )
    spec = job("owned", "import time; time.sleep(60)")
    spec["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    ]
    cluster.batch.create_namespaced_job(ns, spec)
    pod = wait_for(
        lambda: [p for p in job_pods(cluster, ns, "owned") if p.status.phase == "Running"]
    )
    cluster.core.delete_namespaced_config_map("owner", ns)

    def job_gone() -> bool:
        return not any(
            j.metadata.name == "owned" for j in cluster.batch.list_namespaced_job(ns).items
        )

    wait_for(job_gone, 30, message="owned Job garbage-collected")
    # The Job's pod goes too (GC again), and its process with it (the kubelet stand-in).
    wait_for(lambda: not job_pods(cluster, ns, "owned"), 30, message="pod gone")
    assert pod[0].spec.node_name == "cpu-node"


def test_ttl_after_finished_removes_the_job(cluster: Cluster, ns: str) -> None:
    # 5 s, not 1: under load a poll can come more than a second late, after the Job is gone.
    cluster.batch.create_namespaced_job(ns, job("short-lived", "pass", ttlSecondsAfterFinished=5))
    wait_for(lambda: job_condition(cluster, ns, "short-lived", "Complete"), 30)

    def gone() -> bool:
        return not cluster.batch.list_namespaced_job(ns).items

    wait_for(gone, 30, message="Job removed by the TTL controller")


def test_termination_message_reaches_pod_status(cluster: Cluster, ns: str) -> None:
    script = (
        "import json, os\n"
        "open(os.environ['VIDEOPIPE_TERMINATION_LOG'], 'w').write("
        "json.dumps({'outcome': 'done', 'audio_seconds': 61.5}))\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "says-done"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                container(
                    script,
                    env=[{"name": "VIDEOPIPE_TERMINATION_LOG", "value": "/dev/termination-log"}],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "says-done"), 30)
    assert state.exit_code == 0 and state.reason == "Completed"
    assert json.loads(state.message) == {"outcome": "done", "audio_seconds": 61.5}
    assert state.started_at <= state.finished_at


def test_fallback_to_logs_on_error(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crashes"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                container(
                    "import sys; print('boom: no audio stream', flush=True); sys.exit(2)",
                    terminationMessagePolicy="FallbackToLogsOnError",
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "crashes"), 30)
    assert (state.exit_code, state.reason) == (2, "Error")
    assert "boom: no audio stream" in state.message
    assert cluster.core.read_namespaced_pod("crashes", ns).status.phase == "Failed"


def test_kubectl_logs_go_through_the_apiserver_to_the_stand_in(cluster: Cluster, ns: str) -> None:
    script = "for i in range(5): print(f'line {i}')"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talks"},
        "spec": {"restartPolicy": "Never", "containers": [container(script)]},
    }
    cluster.core.create_namespaced_pod(ns, pod)
    wait_for(lambda: terminated(cluster, ns, "talks"), 30)
    assert cluster.core.read_namespaced_pod_log("talks", ns, tail_lines=2) == "line 3\nline 4\n"
    out = cluster.kubectl("logs", "-n", ns, "talks").stdout
    assert out.splitlines() == [f"line {i}" for i in range(5)]


def test_env_sources_and_mapped_paths(cluster: Cluster, ns: str) -> None:
    cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "s3"}, "stringData": {"key": "AKIA", "secret": "shh"}}
    )
    cluster.core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"model": "tiny.en", "lang": "en"}}
    )
    script = (
        "import json, os, tempfile\n"
        "keys = ['KEY','MODEL','POD','NS','NODE','SA','APP','IP','CFG_lang','OPT','CPU','REF']\n"
        "out = {k: os.environ.get(k) for k in keys}\n"
        "out['tmp_writable'] = bool(tempfile.mkstemp())\n"
        "out['tmpdir_mapped'] = os.environ['TMPDIR'] != '/tmp'\n"
        "open(os.environ['TERM_LOG'], 'w').write(json.dumps(out))\n"
    )
    env = [
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "key"}}},
        {"name": "MODEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "model"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {
            "name": "OPT",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
        },
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "REF", "value": "$(MODEL)-$(NS)"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "TERM_LOG", "value": "/dev/termination-log"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "env-check", "labels": {"app": "videopipe"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [
                container(
                    script,
                    env=env,
                    envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                    volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
                    resources={"limits": {"cpu": "1500m", "memory": "1Gi"}},
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "env-check"), 30)
    assert state.exit_code == 0, cluster.pod_log(ns, "env-check")
    got = json.loads(state.message)
    assert got == {
        "KEY": "AKIA",
        "MODEL": "tiny.en",
        "POD": "env-check",
        "NS": ns,
        "NODE": "cpu-node",
        "SA": "default",
        "APP": "videopipe",
        "IP": "127.0.0.1",
        "CFG_lang": "en",
        "OPT": None,
        "CPU": "2",
        "REF": f"tiny.en-{ns}",
        "tmp_writable": True,
        "tmpdir_mapped": True,
    }


def test_missing_secret_key_is_create_container_config_error(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "needs-secret"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                container(
                    "import os; print(os.environ['TOKEN'])",
                    env=[
                        {
                            "name": "TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
                        }
                    ],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)

    def waiting_reason() -> str | None:
        p = cluster.core.read_namespaced_pod("needs-secret", ns)
        statuses = p.status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting and waiting.reason != "ContainerCreating" else None

    assert wait_for(waiting_reason, 60) == "CreateContainerConfigError"
    p = cluster.core.read_namespaced_pod("needs-secret", ns)
    assert p.status.phase == "Pending"
    assert 'secret "creds" not found' in p.status.container_statuses[0].state.waiting.message
    # Once the Secret exists, the kubelet's retry starts the container.
    cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "creds"}, "stringData": {"token": "t0k3n"}}
    )
    state = wait_for(lambda: terminated(cluster, ns, "needs-secret"), 30)
    assert state.exit_code == 0
    assert "t0k3n" in cluster.pod_log(ns, "needs-secret")


def test_missing_configmap_volume_is_a_failed_mount_retried(cluster: Cluster, ns: str) -> None:
    """A volume's missing ConfigMap keeps the pod ContainerCreating (FailedMount), not a config
    error: the kubelet retries the mount, as for a new namespace's `kube-root-ca.crt`."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "needs-config"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}],
            "containers": [
                container(
                    "import os; print(open(os.environ['LEVEL_FILE']).read())",
                    env=[{"name": "LEVEL_FILE", "value": "/etc/cfg/level"}],  # mapped to the volume
                    volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    selector = "involvedObject.name=needs-config,reason=FailedMount"
    events = wait_for(
        lambda: cluster.core.list_namespaced_event(ns, field_selector=selector).items, 60
    )
    assert 'configmap "settings" not found' in events[0].message
    p = cluster.core.read_namespaced_pod("needs-config", ns)
    assert p.status.phase == "Pending"
    assert p.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    cluster.core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"level": "debug"}}
    )
    state = wait_for(lambda: terminated(cluster, ns, "needs-config"), 30)
    assert state.exit_code == 0
    assert "debug" in cluster.pod_log(ns, "needs-config")


def test_on_failure_restarts_the_container_in_place(cluster: Cluster, ns: str) -> None:
    # First run fails, the second (after the kubelet's 10 s CrashLoopBackOff) succeeds.
    script = (
        "import os, sys\n"
        "marker = os.path.join(os.environ['STATE'], 'ran-once')\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close(); sys.exit(1)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "retries"},
        "spec": {
            "restartPolicy": "OnFailure",
            "volumes": [{"name": "state", "emptyDir": {}}],
            "containers": [
                container(
                    script,
                    env=[{"name": "STATE", "value": "/state"}],
                    volumeMounts=[{"name": "state", "mountPath": "/state"}],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "retries"), 40)
    p = cluster.core.read_namespaced_pod("retries", ns)
    assert (p.status.phase, state.exit_code) == ("Succeeded", 0)
    status = p.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1


def test_deleting_a_pod_kills_its_process(cluster: Cluster, ns: str) -> None:
    script = (
        "import os, time; open(os.environ['PIDFILE'], 'w').write(str(os.getpid())); time.sleep(300)"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "run", "emptyDir": {}}],
            "containers": [
                container(
                    script,
                    env=[{"name": "PIDFILE", "value": "/run/app/pid"}],
                    volumeMounts=[{"name": "run", "mountPath": "/run/app"}],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    wait_for(lambda: cluster.core.read_namespaced_pod("sleeper", ns).status.phase == "Running", 30)
    assert cluster.kubelet is not None
    pids = wait_for(lambda: cluster.kubelet.running_pids(), 60)
    cluster.core.delete_namespaced_pod("sleeper", ns)

    def pod_gone() -> bool:
        return not [
            p for p in cluster.core.list_namespaced_pod(ns).items if p.metadata.name == "sleeper"
        ]

    wait_for(pod_gone, 60, message="pod removed after SIGTERM")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_pod_security_restricted_rejects_a_privileged_pod(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(client.ApiException) as err:
        cluster.core.create_namespaced_pod(ns, pod)
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body


def test_namespaced_role_cannot_list_jobs_in_another_namespace(cluster: Cluster, ns: str) -> None:
    other = cluster.create_namespace()
    try:
        cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "operator"}})
        rbac = client.RbacAuthorizationV1Api(cluster.api)
        rbac.create_namespaced_role(
            ns,
            {
                "metadata": {"name": "jobs"},
                "rules": [
                    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "jobs"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "jobs",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}],
            },
        )
        kubeconfig = cluster.token_kubeconfig("operator", ns)
        as_sa = client.BatchV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        wait_for(lambda: as_sa.list_namespaced_job(ns).items is not None, 60)
        with pytest.raises(client.ApiException) as err:
            as_sa.list_namespaced_job(other)
        assert err.value.status == 403
        with pytest.raises(client.ApiException) as err:
            as_sa.list_job_for_all_namespaces()
        assert err.value.status == 403
    finally:
        cluster.delete_namespace(other)


def test_pod_talks_to_the_apiserver_as_its_serviceaccount(cluster: Cluster, ns: str) -> None:
    script = (
        "import os\n"
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "api = client.CoreV1Api()\n"
        "try:\n"
        "    api.list_namespaced_secret(os.environ['NS'])\n"
        "    out = 'allowed'\n"
        "except client.ApiException as e:\n"
        "    out = str(e.status)\n"
        "open(os.environ['TERM_LOG'], 'w').write(out)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "in-cluster"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                container(
                    script,
                    env=[
                        {
                            "name": "NS",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        },
                        # Only env values and args are mapped: code must not hard-code the path.
                        {"name": "TERM_LOG", "value": "/dev/termination-log"},
                    ],
                )
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "in-cluster"), 30)
    assert state.exit_code == 0, cluster.pod_log(ns, "in-cluster")
    assert state.message == "403"  # the `default` ServiceAccount may not read Secrets


def test_pod_with_an_emptydir_at_tmp_still_reaches_the_apiserver(cluster: Cluster, ns: str) -> None:
    """The stand-in's own KUBECONFIG lives under the host's /tmp: a pod's emptyDir at /tmp maps
    the pod's `/tmp/...` values, never the stand-in's host paths (the chart's operator pod)."""
    script = (
        "import json, os, tempfile\n"
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "try:\n"
        "    client.CoreV1Api().list_namespaced_secret(os.environ['NS'])\n"
        "    status = 'allowed'\n"
        "except client.ApiException as e:\n"
        "    status = str(e.status)\n"
        "out = {'status': status, 'tmp': os.environ['TMPDIR'] != '/tmp'}\n"
        "out['tmp_writable'] = bool(tempfile.mkstemp())\n"
        "open(os.environ['TERM_LOG'], 'w').write(json.dumps(out))\n"
    )
    env = [
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "TERM_LOG", "value": "/dev/termination-log"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tmp-and-token"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [
                container(script, env=env, volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])
            ],
        },
    }
    cluster.core.create_namespaced_pod(ns, pod)
    state = wait_for(lambda: terminated(cluster, ns, "tmp-and-token"), 30)
    assert state.exit_code == 0, cluster.pod_log(ns, "tmp-and-token")
    # 403: it authenticated as its ServiceAccount (`default`, no rights), with /tmp mapped.
    assert json.loads(state.message) == {"status": "403", "tmp": True, "tmp_writable": True}

    # ...and the stand-in's Events for it were accepted (`kubectl describe pod` shows them).
    def reasons() -> set[str]:
        selector = "involvedObject.name=tmp-and-token"
        events = cluster.core.list_namespaced_event(ns, field_selector=selector).items
        return {e.reason for e in events}

    wait_for(lambda: {"Pulled", "Started"} <= reasons(), 60, message="Pulled and Started events")


def test_a_second_cluster_starts_and_leaves_nothing_behind() -> None:
    """Start-up to ready (printed, not judged: timing belongs in bench/) and a teardown that
    leaves no process and no port."""
    cl = Cluster()
    t0 = time.monotonic()
    cl.start()
    startup = time.monotonic() - t0
    try:
        ns = cl.create_namespace(pod_security=None)
        cl.core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": "lingers"},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "c", "image": "x", "command": ["sleep", "300"]},
                    ],
                },
            },
        )
        assert cl.kubelet is not None
        pod_pids = wait_for(lambda: cl.kubelet.running_pids(), 30)
        pids = list(cl.control_plane.pids.values()) + pod_pids
        ports = [p for ps in cl.control_plane.ports.values() for p in ps]
    finally:
        cl.stop()
    print(f"second cluster ready in {startup:.1f} s")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    assert not [p for p in ports if port_open(p)]


def test_a_pod_that_ends_while_the_api_server_is_down_is_reported_once_it_is_back() -> None:
    """The stand-in, like a kubelet, keeps writing a pod's status through an outage (refused
    connections), however long: a finished pod must never stay Running and hold its slot."""
    with Cluster() as cl:
        ns = cl.create_namespace()
        pod = {
            "metadata": {"name": "brief"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [container("import time; time.sleep(2)")],
            },
        }
        cl.core.create_namespaced_pod(ns, pod)

        def phase() -> str:
            return cl.core.read_namespaced_pod("brief", ns).status.phase

        wait_for(lambda: phase() == "Running", 60, message="pod Running")
        assert cl.kubelet is not None
        run = cl.kubelet.run_for(ns, "brief")
        assert run is not None
        with cl.control_plane.apiserver_down():
            # More failed writes than the stand-in used to allow (5) before giving up for good.
            wait_for(lambda: run.status_retries > 8, 60, message="status writes retried")
            retried = run.status_retries
        wait_for(lambda: phase() == "Succeeded", 60, message="pod Succeeded after the outage")
        state = cl.core.read_namespaced_pod("brief", ns).status.container_statuses[0].state
        assert state.terminated is not None and state.terminated.exit_code == 0
    print(f"status written after {retried} failed attempts during the outage")
