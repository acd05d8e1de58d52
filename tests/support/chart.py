"""The Helm chart as the tests see it: helm itself (built into .cache/bin by bootstrap) and the
objects `helm template` renders."""

import subprocess
from typing import Any

import yaml

from tests.support.processes import ROOT

CHART = ROOT / "charts/botsmith"
HELM = ROOT / ".cache/bin/helm"
MONITORING_APIS = [
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
]
# The one value without a default: the chart never generates the JWT signing secret.
JWT_SECRET_ARGS = ["--set", "secrets.jwtSecret=template-check-secret-of-32-characters"]

Manifest = dict[str, Any]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=check)


def render(*args: str, api_versions: list[str] | None = None) -> list[Manifest]:
    """`helm template` of release "release" in namespace botsmith with a JWT secret; extra args
    go to helm."""
    extra = [f"--api-versions={api}" for api in api_versions or []]
    extra += JWT_SECRET_ARGS
    out = helm("template", "release", str(CHART), "--namespace", "botsmith", *extra, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, suffix: str) -> Manifest:
    (match,) = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(suffix)]
    return match
