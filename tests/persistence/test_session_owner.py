"""A persisted session still belongs to the user that made it after a restart (issue 11's
"another user's session" across issue 14's persistence): alice may not resume bob's
session by its client id once the broker has been killed and started again."""

from __future__ import annotations

import pytest

from appliance.mqtt.packets import Connect
from tests.broker.raw import RawClient
from tests.security.security_helpers import auth_block

PASSWORDS = 'alice = "alicepw"\nbob = "bobpw"\n'


def connack(port: int, username: str, password: bytes) -> tuple[int, bool]:
    raw = RawClient(port, "bob-dev", version=4, connect=False)
    raw.send(Connect("bob-dev", 4, clean_start=False, username=username, password=password))
    ack = raw.expect("ConnAck")
    if ack.reason_code == 0:
        # A PUBACK comes once everything recorded before it is on disk, the new session too
        # (CONNACK itself does not wait for the commit: README, Persistence).
        raw.publish("t", b"x", qos=1, packet_id=1)
        raw.expect("PubAck")
    raw.sock.close()
    return ack.reason_code, ack.session_present


@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_the_owner_of_a_persisted_session_survives_a_restart(broker_factory, tmp_path, how):
    config = f'persistence {{ dir = "{tmp_path / "data"}" }}\n' + auth_block(
        tmp_path, PASSWORDS, options="allow_anonymous = false")
    broker = broker_factory(config)
    assert connack(broker.port, "bob", b"bobpw") == (0, False)
    if how == "kill":
        broker.kill()
    else:
        broker.stop()
    broker = broker_factory(config)
    assert connack(broker.port, "alice", b"alicepw")[0] == 5  # v3 "not authorized"
    assert connack(broker.port, "bob", b"bobpw") == (0, True)
