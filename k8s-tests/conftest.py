"""A real Kubernetes control plane on loopback: etcd and kube-apiserver, built by
`scripts/bootstrap.sh test` into .cache/bin. No kubelet: objects are stored and validated, pods
never run. The full tier uses a real cluster instead (BOTSMITH_KUBECONFIG): the test command
starts a one-node one with scripts/cluster/."""

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml

from tests.support.chart import HELM
from tests.support.processes import ROOT, ManagedProcess, free_port, wait_for_port

BIN = ROOT / ".cache/bin"


@dataclass(frozen=True)
class Cluster:
    """A Kubernetes API reachable with a kubeconfig (and, for REST calls, a bearer token)."""

    kubeconfig: Path
    server: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=False,  # the API server's self-signed serving certificate
            timeout=10,
        )

    def helm(self, *args: str) -> str:
        return helm(self.kubeconfig, *args)


def helm(kubeconfig: Path, *args: str) -> str:
    """Runs helm against the cluster; its output, or an assertion error with what it said."""
    result = subprocess.run(
        [str(HELM), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}")
    return result.stdout


def write_kubeconfig(path: Path, server: str, token: str) -> None:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))


def start_etcd(workdir: Path) -> tuple[ManagedProcess, str]:
    client, peer = free_port(), free_port()
    client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    etcd = ManagedProcess(
        [
            str(BIN / "etcd"),
            "--name=control-plane",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=control-plane={peer_url}",
            "--unsafe-no-fsync",  # a throwaway store; durability is not under test
            "--log-level=warn",
        ],
        workdir / "etcd.log",
        os.environ,
    )
    etcd.start()
    wait_for_port(client)
    return etcd, client_url


def start_apiserver(workdir: Path, etcd_url: str, token: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    key = workdir / "service-accounts.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},admin,admin,"system:masters"\n')
    apiserver = ManagedProcess(
        [
            str(BIN / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'certs'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # No node runs here, and loopback cannot be advertised as the kubernetes Service.
            "--endpoint-reconciler-type=none",
        ],
        workdir / "kube-apiserver.log",
        os.environ,
    )
    apiserver.start()
    return apiserver, f"https://127.0.0.1:{port}"


def wait_until_ready(cluster: Cluster, process: ManagedProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with cluster.client() as client:
        while time.monotonic() < deadline:
            assert process.process is not None
            if process.process.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited:\n{process.output()[-4000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready in {timeout} s:\n{process.output()[-4000:]}")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for binary in ("etcd", "kube-apiserver", "helm"):
        assert (BIN / binary).exists(), f"{binary} is built by `scripts/bootstrap.sh test`"
    workdir = tmp_path_factory.mktemp("control-plane")
    token = secrets.token_hex(24)
    etcd, etcd_url = start_etcd(workdir)
    try:
        apiserver, server = start_apiserver(workdir, etcd_url, token)
        try:
            cluster = Cluster(workdir / "kubeconfig", server, token)
            write_kubeconfig(cluster.kubeconfig, server, token)
            wait_until_ready(cluster, apiserver)
            yield cluster
        finally:
            apiserver.stop()
    finally:
        etcd.stop()


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = BIN / "kubectl" if (BIN / "kubectl").exists() else "kubectl"
    return subprocess.run(
        [str(binary), f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True
    )


def unavailable(reason: str) -> NoReturn:
    """Skips a full-tier test with the reason; fails it where the full tier must run (the test
    command's cluster tier sets BOTSMITH_REQUIRE_CLUSTER=1)."""
    if os.environ.get("BOTSMITH_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"full tier: {reason}")
    pytest.skip(f"full tier: {reason}")


@pytest.fixture(scope="session")
def full_cluster() -> Path:
    """A real cluster with a ready node (scripts/cluster/, kind, minikube) named by
    BOTSMITH_KUBECONFIG, reached with kubectl and helm; else the full tier is skipped."""
    kubeconfig = os.environ.get("BOTSMITH_KUBECONFIG")
    if not kubeconfig:
        unavailable("set BOTSMITH_KUBECONFIG to a cluster's kubeconfig")
    if not (BIN / "kubectl").exists() and shutil.which("kubectl") is None:
        unavailable("kubectl is not installed")
    nodes = kubectl(
        Path(kubeconfig), "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=30s"
    )
    if nodes.returncode != 0:
        unavailable(f"no ready nodes in BOTSMITH_KUBECONFIG: {nodes.stderr.strip()}")
    return Path(kubeconfig)
