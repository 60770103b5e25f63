"""Fixtures for the WebHook stage's tests: a recording HTTP receiver and stage processes."""

from __future__ import annotations

import pytest
from stage_process import StageProcess
from webhook_receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def start_stage():
    """`start_stage(url, rules=..., **config)`: a WebhookStage in a gevent process."""
    started = []

    def start(url, rules=None, **config) -> StageProcess:
        process = StageProcess(url, rules, **config)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
