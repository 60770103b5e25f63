"""docker/Dockerfile, statically: hadolint, and only what Debian 12's buildah can build."""

from __future__ import annotations

import re

import pytest

from .tooling import DOCKERFILE, require, run

pytestmark = pytest.mark.static


def test_hadolint_finds_nothing():
    result = run(require("hadolint"), str(DOCKERFILE), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_avoids_what_buildah_1_28_cannot_build():
    instructions = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not any(re.search(r"<<-?\s*['\"]?\w", line) for line in instructions), "heredoc"
    assert not any("--link" in line for line in instructions)


def test_base_image_is_overridable_and_pinned_to_bookworm():
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_entrypoint_and_healthcheck_are_exec_form():
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["python", "-m", "appliance"\]$', text, re.M)
    assert re.search(r'^\s+CMD \["python", "/app/healthcheck.py"\]$', text, re.M)
