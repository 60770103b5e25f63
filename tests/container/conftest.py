"""Fixtures for the image and chart tests (docker/, helm/).

`bash .ci/container.sh` installs the tools and runs these (CONTAINER_CHECKS=1); `-m static`
needs helm, hadolint, kubernetes-validate, promtool and docker-compose on PATH, `-m container`
also podman and APPLIANCE_IMAGE. A missing tool skips a test on a workstation and fails it
under CI=true. They are left out of CI's plain Python test run, which installs none of these
(.ci/run calls container.sh next), and out of any run without PyYAML.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from .tooling import CHART, Rendered, require, run

if (os.environ.get("CI") == "true" and not os.environ.get("CONTAINER_CHECKS")) or not importlib.util.find_spec("yaml"):
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "static: Dockerfile and Helm chart checks without running containers")
    config.addinivalue_line("markers", "container: builds on a podman-built image: runs it, MQTT, webhook, Prometheus")


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> str:
    path = require("helm")
    # helm keeps caches and config under HOME; give it a scratch one.
    home = tmp_path_factory.mktemp("helm-home")
    os.environ.setdefault("HELM_CACHE_HOME", str(home / "cache"))
    os.environ.setdefault("HELM_CONFIG_HOME", str(home / "config"))
    os.environ.setdefault("HELM_DATA_HOME", str(home / "data"))
    return path


@pytest.fixture(scope="session")
def render(helm, tmp_path_factory):
    """render(*helm_args, config=None) -> Rendered; `config` goes in through --set-file untouched."""
    scratch = tmp_path_factory.mktemp("render")

    def render(*args: str, config: str | None = None, release: str = "nq", namespace: str = "edge") -> Rendered:
        extra = []
        if config is not None:
            path = scratch / f"config-{abs(hash(config))}.conf"
            path.write_bytes(config.encode())
            extra = ["--set-file", f"config={path}"]
        result = run(helm, "template", release, str(CHART), "--namespace", namespace, *extra, *args)
        return Rendered(result.stdout)

    return render
