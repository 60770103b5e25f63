"""Refusals reach the webhook as NanoMQ's client_connack with the reason's name, and no
secret ever travels in a webhook body."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webhook"))

from security_helpers import auth_block, connack  # noqa: E402
from webhook_receiver import Receiver  # noqa: E402


@pytest.fixture
def receiver():
    server = Receiver()  # already listening
    yield server
    server.stop()


def test_refusals_are_posted_as_client_connack_with_their_reason(broker_factory, tmp_path, receiver):
    webhook = f'webhook {{\n url = "{receiver.url}"\n events = [{{ event = "on_client_connack" }}]\n}}\n'
    broker = broker_factory(webhook + auth_block(tmp_path, 'admin: "s3cr3t-Pw"\n', options="allow_anonymous = false"))
    assert connack(broker.port, "wrong", "admin", b"guess-Pw-123")[0] == 0x86
    assert connack(broker.port, "anon")[0] == 0x87
    assert connack(broker.port, "right", "admin", b"s3cr3t-Pw")[0] == 0
    requests = receiver.wait_delivered(3)
    bodies = {body["clientid"]: body for body in (json.loads(r.body) for r in requests)}
    assert bodies["wrong"]["action"] == "client_connack"
    assert bodies["wrong"]["conn_ack"] == "bad_username_or_password"
    assert bodies["anon"]["conn_ack"] == "not_authorized"
    assert bodies["right"]["conn_ack"] == "success"
    raw = b"".join(r.body for r in requests)
    assert b"guess-Pw-123" not in raw and b"s3cr3t-Pw" not in raw
