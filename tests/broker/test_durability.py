"""The durability barrier: QoS 1/2 acknowledgements wait for every registered Durable,
in publish order; with none, they go at once (in-process, with a test-only Durable)."""

import pytest

from appliance.broker.durability import Barrier, barrier
from tests.broker.inproc import Hub


class HeldDurable:
    """Confirms only when the test says, as a store whose fsync is slow. Every callback
    asked for is a commit of its own, unless `one_commit` (as a store whose next commit has
    not started yet)."""

    def __init__(self, one_commit: bool = False) -> None:
        self.callbacks = []
        self.one_commit = one_commit

    def when_durable(self, callback) -> None:
        self.callbacks.append(callback)

    def mark(self) -> int:
        return 0 if self.one_commit else len(self.callbacks)

    def confirm(self, index: int) -> None:
        self.callbacks[index]()


def _kinds(peer):
    return [(type(p).__name__, p.packet_id) for p in peer.read()]


def test_no_durable_means_no_barrier():
    assert barrier([]) is None
    hub = Hub()
    pub = hub.peer("pub")
    assert pub.publish("t", b"x", qos=1) == 0


def test_puback_and_pubrec_wait_for_the_durable_and_keep_publish_order():
    durable = HeldDurable()
    hub = Hub(durables=[durable])
    sub = hub.peer("sub")
    sub.subscribe("t", qos=1)
    pub = hub.peer("pub")
    pub.publish("t", b"1", qos=1, packet_id=1)
    pub.publish("t", b"2", qos=2, packet_id=2)
    pub.publish("t", b"3", qos=1, packet_id=3)
    assert len(sub.messages()) == 3  # routed at once: only the acknowledgement waits
    assert _kinds(pub) == []
    durable.confirm(1)  # the second confirms first: its PUBREC still waits behind the first
    assert _kinds(pub) == []
    durable.confirm(0)
    assert _kinds(pub) == [("PubAck", 1), ("PubRec", 2)]
    durable.confirm(2)
    assert _kinds(pub) == [("PubAck", 3)]


def test_publishes_routed_before_the_next_commit_share_one_callback_and_keep_their_order():
    durable = HeldDurable(one_commit=True)
    hub = Hub(durables=[durable])
    sub = hub.peer("sub")
    sub.subscribe("t", qos=1)
    pub = hub.peer("pub")
    for packet_id in (1, 2, 3):
        pub.publish("t", b"x", qos=1 + packet_id % 2, packet_id=packet_id)
    assert len(durable.callbacks) == 1
    assert _kinds(pub) == []
    durable.confirm(0)
    assert _kinds(pub) == [("PubRec", 1), ("PubAck", 2), ("PubRec", 3)]


def test_an_acknowledgement_that_is_not_for_a_routed_message_keeps_its_place():
    durable = HeldDurable()
    hub = Hub(durables=[durable])
    pub = hub.peer("pub")
    pub.publish("t", b"1", qos=2, packet_id=1)
    pub.publish("t", b"1", qos=2, packet_id=1, dup=True)  # a resend: answered, not routed again
    assert _kinds(pub) == []
    durable.confirm(0)
    assert _kinds(pub) == [("PubRec", 1), ("PubRec", 1)]
    assert len(durable.callbacks) == 1


def test_every_durable_must_confirm():
    first, second = HeldDurable(), HeldDurable()
    hub = Hub(durables=[first, second])
    pub = hub.peer("pub")
    pub.publish("t", b"1", qos=1, packet_id=1)
    first.confirm(0)
    assert _kinds(pub) == []
    second.confirm(0)
    assert _kinds(pub) == [("PubAck", 1)]


def test_an_acknowledgement_confirmed_after_the_connection_closed_is_dropped():
    durable = HeldDurable()
    hub = Hub(durables=[durable])
    pub = hub.peer("pub")
    pub.publish("t", b"1", qos=1, packet_id=1)
    pub.drop()
    durable.confirm(0)
    assert _kinds(pub) == []


def test_a_barrier_needs_a_durable():
    with pytest.raises(ValueError):
        Barrier([])
