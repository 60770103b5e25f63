"""The connection state machine: the table, and what each state does with a packet (in-process)."""

import logging

import pytest

from appliance.broker.questions import Authenticate, AuthVerdict
from appliance.broker.state import (
    DROP, HOLD, INBOUND, TRANSITIONS, ConnectionState, Event, LocalProtocolError, State,
)
from appliance.mqtt.codec import encode
from appliance.mqtt.packets import Connect, Disconnect, Publish, Subscribe, Subscription
from tests.broker.inproc import Hub, Peer


def test_every_state_but_closed_can_close_and_nothing_leaves_closed():
    for state in State:
        targets = {event: TRANSITIONS.get((state, event)) for event in Event}
        if state is State.CLOSED:
            assert not any(targets.values())
        else:
            assert targets[Event.TRANSPORT_CLOSED] is State.CLOSED
    assert INBOUND[State.AUTHENTICATING] is HOLD
    assert INBOUND[State.CLOSING] is DROP and INBOUND[State.CLOSED] is DROP


def test_an_event_the_table_does_not_have_is_our_bug():
    machine = ConnectionState()
    with pytest.raises(LocalProtocolError):
        machine.process(Event.TAKEN_OVER)  # nobody takes over a connection before CONNECT
    assert machine.process(Event.CONNECT) is State.AUTHENTICATING
    assert machine.process(Event.ACCEPTED) is State.CONNECTED
    assert machine.process(Event.TAKEN_OVER) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        machine.process(Event.ACCEPTED)


def test_packets_after_takeover_are_not_routed_and_raise_nothing(hub, caplog):
    """The old connection of a taken-over client keeps sending: dropped and counted."""
    watcher = hub.peer("watcher")
    watcher.subscribe("after/#", qos=1)
    old = hub.peer("same")
    old.subscribe("big", qos=1)
    publisher = hub.peer("pub")
    for _ in range(50):  # `old` does not read: its outbox fills and the session queues
        publisher.publish("big", b"x" * 100_000, qos=1)
    new = hub.peer("same")
    assert old.client.state is State.CLOSING
    with caplog.at_level(logging.DEBUG):
        old.publish("after/takeover", b"must not arrive", qos=1, packet_id=1)
        old.send(Subscribe(2, [Subscription("after/#", 1)]))
        old.publish("after/takeover", b"nor this", qos=0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert hub.stats.packets_dropped_closing == 3
    watcher.expect_no_message()
    assert "after/#" not in hub.broker.sessions["same"].subscriptions
    new.roundtrip()
    old.drop()  # its socket ends later: the session stays with the new connection
    assert hub.broker.sessions["same"].link is new.client
    publisher.publish("after/x", b"ok", qos=1)
    assert watcher.expect_message().payload == b"ok"


def test_packets_after_disconnect_are_dropped(hub):
    watcher = hub.peer("watcher")
    watcher.subscribe("t", qos=0)
    leaving = hub.peer("leaving")
    leaving.send(Disconnect(),
                 Publish("t", b"late", 0, False, False, None, {}))
    assert leaving.closed
    watcher.expect_no_message()
    assert hub.stats.packets_dropped_closing == 1


def _client_with_auth(hub: Hub) -> Peer:
    hub.settings = type(hub.settings)(hub.mqtt, hub.limits, authenticates=True)
    return Peer(hub, "asker", 4)


def test_connect_waits_in_authenticating_and_pipelined_packets_wait_with_it(hub):
    peer = _client_with_auth(hub)
    data = encode(Connect("asker", 4), 4) + encode(Subscribe(1, [Subscription("a/b", 1)]), 4)
    question = peer.client.receive_data(data)
    assert isinstance(question, Authenticate) and question.client.client_id == "asker"
    assert peer.client.state is State.AUTHENTICATING
    assert peer.read() == []  # no CONNACK, and the SUBSCRIBE is held, not answered
    assert peer.client.answer(AuthVerdict(0)) is None
    assert peer.client.state is State.CONNECTED
    assert [type(p).__name__ for p in peer.read()] == ["ConnAck", "SubAck"]
    assert "a/b" in hub.broker.sessions["asker"].subscriptions


def test_a_refused_connect_drops_what_was_pipelined_behind_it(hub):
    peer = _client_with_auth(hub)
    data = encode(Connect("asker", 4), 4) + encode(Subscribe(1, [Subscription("a/b", 1)]), 4)
    peer.client.receive_data(data)
    peer.client.answer(AuthVerdict(0x86, "wrong password"))
    assert [(type(p).__name__, p.reason_code) for p in peer.read()] == [("ConnAck", 4)]
    assert peer.client.state is State.CLOSING
    assert "asker" not in hub.broker.sessions
    assert hub.stats.packets_dropped_closing == 1


def test_a_verdict_that_comes_after_shutdown_changes_nothing(hub):
    peer = _client_with_auth(hub)
    peer.client.receive_data(encode(Connect("asker", 5), 5))
    peer.client.shut_down()  # the broker stopped while the auth server was asked
    peer.client.answer(AuthVerdict(0))
    assert "asker" not in hub.broker.sessions
    assert peer.client.state is State.CLOSING
