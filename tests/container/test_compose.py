"""docker/compose.yaml: valid for Compose, mounting the config as the image expects, examples that load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from .tooling import REPO, require, run

pytestmark = pytest.mark.static

COMPOSE = REPO / "docker" / "compose.yaml"


def compose_config(*args: str, **env: str) -> dict:
    result = run(require("docker-compose"), "-f", str(COMPOSE), *args, "config", env={**os.environ, **env})
    return yaml.safe_load(result.stdout)


def test_broker_alone_mounts_the_example_config_directory_read_only():
    services = compose_config()["services"]
    assert services["webhook-receiver"]["profiles"] == ["webhook"]  # started only with --profile webhook
    broker = services["broker"]
    assert f"{REPO}/docker/config:/etc/nanomq:ro" in broker["volumes"]
    assert {(p["published"], p["target"]) for p in broker["ports"]} == {(1883, 1883), (8081, 8081), (8083, 8083)}
    assert broker["read_only"] is True and broker["cap_drop"] == ["ALL"]
    assert broker["build"] == {"context": str(REPO), "dockerfile": "docker/Dockerfile"}


def test_webhook_profile_adds_the_receiver_and_its_config():
    services = compose_config("--profile", "webhook", NANOMQ_CONFIG_DIR="./config-webhook")["services"]
    assert f"{REPO}/docker/config-webhook:/etc/nanomq:ro" in services["broker"]["volumes"]
    receiver = services["webhook-receiver"]
    assert receiver["image"] == services["broker"]["image"]
    assert "webhook-receiver:8080" in (REPO / "docker" / "config-webhook" / "nanomq.conf").read_text()


@pytest.mark.parametrize("directory", ["config", "config-webhook"])
def test_example_configs_pass_check_config(directory):
    conf = REPO / "docker" / directory / "nanomq.conf"
    result = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--conf", str(conf)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stdout + result.stderr
