"""Helpers for the image and chart tests: finding tools, running them, free ports, rendered manifests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "nanomq-appliance"
DOCKERFILE = REPO / "docker" / "Dockerfile"


def unavailable(message: str):
    """A missing tool or image fails the test under CI=true and skips it elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require(tool: str) -> str:
    """The path of `tool` on PATH, or unavailable()."""
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} is not installed (bash .ci/container.sh installs it)")
    return path


def run(*args: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, text in and out; a failure shows its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args[:4])} ... exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a container on the host network)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rendered:
    """The manifests of one `helm template` run, found by kind (and name)."""

    def __init__(self, text: str):
        import yaml  # PyYAML: in .ci/container.sh's venv, not the project's

        self.text = text
        self.documents = [doc for doc in yaml.safe_load_all(text) if doc]

    def all(self, kind: str) -> list[dict]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    @property
    def workload(self) -> dict:
        """The broker's Deployment or StatefulSet."""
        (found,) = [doc for doc in self.documents if doc["kind"] in ("Deployment", "StatefulSet")]
        return found

    @property
    def pod_spec(self) -> dict:
        return self.workload["spec"]["template"]["spec"]

    @property
    def configmap_text(self) -> str:
        """Every ConfigMap's data, as one text."""
        return "\n".join(value for doc in self.all("ConfigMap") for value in doc.get("data", {}).values())

    @property
    def broker(self) -> dict:
        return next(c for c in self.pod_spec["containers"] if c["name"] == "broker")
