"""A real Kubernetes control plane on 127.0.0.1: etcd, apiserver, controller-manager, scheduler.

Why: the operator must be proven against Kubernetes itself (CRD validation, status subresource,
resourceVersion conflicts, watches, RBAC, PodSecurity admission, the Job controller, garbage
collection, scheduling), and these machines have no cluster and no container engine. The four
programs are Go binaries that `build-binaries.sh` compiles from their modules and caches; this
module only runs them.

`ControlPlane` is a context manager. On entry it makes a temporary folder with its own CA, an
apiserver serving certificate, a service-account signing key and client certificates (admin in
`system:masters`, controller-manager, scheduler), starts each program on free loopback ports in its
own process group, and returns once `/readyz` is ok and the `default` ServiceAccount exists (the
controller-manager is then working). On exit it stops them in reverse order and asserts that no
process and no listening port is left behind. Nodes and pods are the kubelet stand-in's job
(`kubelet.py`), not this module's.

Used by `fixtures.py` (the pytest `cluster` fixture) and `__main__.py` (`make cluster`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.ports import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD_SCRIPT = HERE / "build-binaries.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def port_open(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def binaries_dir() -> Path:
    """The folder with the four binaries: $VIDEOPIPE_K8S_BIN, else built (or found) in the cache.

    build-binaries.sh returns in well under a second when the cache is complete.
    """
    if env := os.environ.get("VIDEOPIPE_K8S_BIN"):
        return Path(env)
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


# --- certificates -------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256: generated in microseconds (RSA 2048 takes ~100 ms each), accepted by every component,
    # and ES256 is a valid service-account token signing algorithm.
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class _CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str) -> _CA:
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        common_name: str,
        organizations: Sequence[str] = (),
        *,
        server: bool = False,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> tuple[bytes, bytes]:
        """A (cert PEM, key PEM) pair signed by this CA, for a client or a server."""
        key = _key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if dns or ips:
            names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _pem_cert(builder.sign(self.key, hashes.SHA256())), _pem_key(key)


def write_kubeconfig(
    path: Path,
    server: str,
    ca_pem: bytes,
    *,
    user: str,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """A kubeconfig with one cluster, user and context, authenticating by client cert or token."""
    import base64

    creds: dict[str, str] = {}
    if cert_file and key_file:
        creds = {"client-certificate": str(cert_file), "client-key": str(key_file)}
    if token:
        creds = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "videopipe-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "videopipe-test", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --- processes ----------------------------------------------------------------------------


@dataclass
class _Component:
    name: str
    argv: list[str]
    log: Path
    ports: list[int]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so teardown reaches all of it
            )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; last lines of {self.log}:\n"
                + tail(self.log)
            )

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        # Whatever the leader left in its group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file, for error messages ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the control plane --------------------------------------------------------------------


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler on 127.0.0.1.

    After `start()` (or entering the context): `server` (https URL), `kubeconfig` (admin, in
    system:masters), `ca_file`, `dir` (all state and component logs under `dir/logs`), and
    `startup_seconds` (from start to ready).
    """

    bin_dir: Path | None = None
    workdir: Path | None = None
    ready_timeout: float = 90.0
    verbosity: int = 1
    dir: Path = field(init=False)
    server: str = field(init=False, default="")
    kubeconfig: Path = field(init=False)
    ca_file: Path = field(init=False)
    startup_seconds: float = field(init=False, default=0.0)
    _components: list[_Component] = field(init=False, default_factory=list)
    _own_dir: bool = field(init=False, default=False)

    # -- lifecycle --

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(check=exc_type is None)

    def start(self) -> None:
        started = time.monotonic()
        bins = self.bin_dir or binaries_dir()
        for name in BINARIES:
            if not os.access(bins / name, os.X_OK):
                raise FileNotFoundError(f"{bins / name} missing: run `make k8s-binaries`")
        if self.workdir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="videopipe-k8s-"))
            self._own_dir = True
        else:
            self.dir = self.workdir
            self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        pki = self.dir / "pki"
        pki.mkdir(exist_ok=True)
        self._write_pki(pki)
        try:
            self._components = self._plan(bins, pki)
            etcd, apiserver, *controllers = self._components
            etcd.start(self.dir)
            self._wait_http(etcd.name, f"http://127.0.0.1:{etcd.ports[0]}/health", tls=False)
            apiserver.start(self.dir)
            self._wait_http(apiserver.name, f"{self.server}/readyz", tls=True)
            for comp in controllers:
                comp.start(self.dir)
            self._wait_http(
                "default ServiceAccount",
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default",
                tls=True,
            )
        except BaseException:
            self.stop(check=False)
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self, check: bool = True) -> None:
        """Stop in reverse order; with `check`, assert no process group or port is left."""
        comps = list(reversed(self._components))
        for comp in comps:
            comp.stop()
        leftovers = [c.name for c in comps if c.proc is not None and _group_alive(c.proc.pid)]
        open_ports = [p for c in comps for p in c.ports if port_open(p)]
        self._components = []
        if self._own_dir and not leftovers:
            shutil.rmtree(self.dir, ignore_errors=True)
        if check:
            assert not leftovers, f"processes left running: {leftovers}"
            assert not open_ports, f"ports still listening: {open_ports}"

    @contextlib.contextmanager
    def apiserver_down(self) -> Iterator[None]:
        """Stop kube-apiserver (connections are refused meanwhile); start it again, on the same
        port with the same etcd, on leaving, and wait until it is ready."""
        apiserver = next(c for c in self._components if c.name == "kube-apiserver")
        apiserver.stop()
        try:
            yield
        finally:
            apiserver.start(self.dir)
            self._wait_http(apiserver.name, f"{self.server}/readyz", tls=True)

    # -- conveniences --

    def api_client(self):  # -> kubernetes.client.ApiClient (import kept lazy)
        """A new admin ApiClient (the `kubernetes` package reads $KUBECONFIG only at import)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @property
    def kubelet_serving_cert(self) -> tuple[Path, Path]:
        """(cert, key) for the kubelet stand-in's HTTPS server, signed by this cluster's CA."""
        return self.dir / "pki" / "kubelet.crt", self.dir / "pki" / "kubelet.key"

    def issue(
        self,
        common_name: str,
        organizations: Sequence[str] = (),
        *,
        server: bool = False,
        ips: Sequence[str] = (),
    ) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) signed by this cluster's CA: a node's or a webhook's identity."""
        pki = self.dir / "pki"
        key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        ca = _CA(key, x509.load_pem_x509_certificate(self.ca_file.read_bytes()))
        return ca.issue(common_name, organizations, server=server, ips=ips)

    def component_log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    @property
    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self._components if c.proc is not None}

    @property
    def ports(self) -> dict[str, list[int]]:
        return {c.name: list(c.ports) for c in self._components}

    # -- internals --

    def _write_pki(self, pki: Path) -> None:
        ca = _CA.create("videopipe-test-ca")
        self._ca_pem = _pem_cert(ca.cert)
        self.ca_file = pki / "ca.crt"
        self.ca_file.write_bytes(self._ca_pem)
        (pki / "ca.key").write_bytes(_pem_key(ca.key))
        cert, key = ca.issue(
            "kube-apiserver",
            server=True,
            dns=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ips=["127.0.0.1", API_SERVICE_IP],
        )
        (pki / "apiserver.crt").write_bytes(cert)
        (pki / "apiserver.key").write_bytes(key)
        sa_key = _key()
        (pki / "sa.key").write_bytes(_pem_key(sa_key))
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        # The kubelet stand-in serves pod logs over HTTPS as the kubelet does (`kubectl logs`).
        cert, key = ca.issue(
            "kubelet", server=True, dns=["localhost", "cpu-node", "gpu-node"], ips=["127.0.0.1"]
        )
        (pki / "kubelet.crt").write_bytes(cert)
        (pki / "kubelet.key").write_bytes(key)
        # Front proxy (aggregation layer): the apiserver publishes this CA, and the controller-
        # manager and scheduler read it; without it they log errors every few seconds.
        front = _CA.create("videopipe-test-front-proxy-ca")
        (pki / "front-proxy-ca.crt").write_bytes(_pem_cert(front.cert))
        cert, key = front.issue("front-proxy-client")
        (pki / "front-proxy-client.crt").write_bytes(cert)
        (pki / "front-proxy-client.key").write_bytes(key)
        # Client identities that the default RBAC bootstrap policy already knows.
        for name, cn, orgs in [
            ("admin", "videopipe-admin", ["system:masters"]),
            ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"]),
            ("controller-manager", "system:kube-controller-manager", []),
            ("scheduler", "system:kube-scheduler", []),
        ]:
            cert, key = ca.issue(cn, orgs)
            (pki / f"{name}.crt").write_bytes(cert)
            (pki / f"{name}.key").write_bytes(key)

    def _plan(self, bins: Path, pki: Path) -> list[_Component]:
        logs = self.dir / "logs"
        etcd_client, etcd_peer = free_port(), free_port()
        api_port = free_port()
        cm_port, sched_port = free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        kcfg = {}
        for name in ("admin", "controller-manager", "scheduler"):
            kcfg[name] = write_kubeconfig(
                self.dir / f"{name}.kubeconfig",
                self.server,
                self._ca_pem,
                user=name,
                cert_file=pki / f"{name}.crt",
                key_file=pki / f"{name}.key",
            )
        self.kubeconfig = kcfg["admin"]
        v = f"--v={self.verbosity}"
        etcd = _Component(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=default",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                # Test data is disposable: skip fsync so that a busy disk cannot stall writes.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            logs / "etcd.log",
            [etcd_client, etcd_peer],
        )
        apiserver = _Component(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # The defaults (NamespaceLifecycle, ServiceAccount, LimitRanger, Priority,
                # DefaultTolerationSeconds, ResourceQuota, MutatingAdmissionWebhook, ...) stay on;
                # named here so that a reader sees PodSecurity is enforced.
                "--enable-admission-plugins=NodeRestriction,PodSecurity",
                "--allow-privileged=true",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                f"--kubelet-certificate-authority={self.ca_file}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                # Node Hostname addresses (cpu-node, gpu-node) do not resolve here.
                "--kubelet-preferred-address-types=InternalIP",
                # Loopback addresses are invalid in Endpoints; pods reach the apiserver through a
                # kubeconfig that the kubelet stand-in writes, not the `kubernetes` Service.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                v,
            ],
            logs / "kube-apiserver.log",
            [api_port],
        )
        controller_manager = _Component(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={kcfg['controller-manager']}",
                f"--authentication-kubeconfig={kcfg['controller-manager']}",
                f"--authorization-kubeconfig={kcfg['controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={cm_port}",
                f"--cert-dir={self.dir / 'controller-manager-certs'}",
                "--leader-elect=false",
                # Every default controller: garbagecollector, job, cronjob, ttl-after-finished,
                # serviceaccount, serviceaccount-token, namespace, nodelifecycle, replicaset,
                # deployment, endpointslice, podgc, resourcequota, ...
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                f"--cluster-signing-cert-file={self.ca_file}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--concurrent-gc-syncs=10",
                v,
            ],
            logs / "kube-controller-manager.log",
            [cm_port],
        )
        scheduler = _Component(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={kcfg['scheduler']}",
                f"--authentication-kubeconfig={kcfg['scheduler']}",
                f"--authorization-kubeconfig={kcfg['scheduler']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                "--leader-elect=false",
                v,
            ],
            logs / "kube-scheduler.log",
            [sched_port],
        )
        return [etcd, apiserver, controller_manager, scheduler]

    def _deadline_check(self, deadline: float, what: str) -> None:
        for comp in self._components:
            comp.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name}\n{tail(c.log, 15)}" for c in self._components)
            raise TimeoutError(f"{what} not ready after {self.ready_timeout} s\n{logs}")

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(self.dir / "pki" / "admin.crt", self.dir / "pki" / "admin.key")
        return ctx

    def _wait_http(self, what: str, url: str, tls: bool) -> None:
        """Poll `url` until it answers 200 (components, then objects they create)."""
        deadline = time.monotonic() + self.ready_timeout
        ctx = self._ssl_context() if tls else None
        while True:
            self._deadline_check(deadline, what)
            try:
                with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
