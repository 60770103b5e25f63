"""The outbox budget: beyond it QoS 0 is dropped, QoS 1/2 wait in the session as
references and go out when the socket drains (in-process)."""

from appliance.config.model import MqttConfig
from tests.broker.inproc import Hub

BUDGET = 256 * 1024
PAYLOAD = b"p" * 64 * 1024


def _stuck_subscriber(hub, qos):
    stuck = hub.peer("stuck")
    stuck.subscribe("big", qos=qos)
    return stuck, hub.peer("pub")


def test_qos1_beyond_the_budget_waits_in_the_session_unencoded():
    hub = Hub(budget=BUDGET)
    stuck, pub = _stuck_subscriber(hub, 1)
    for _ in range(40):  # 2.5 MB, ten times the budget
        pub.publish("big", PAYLOAD, qos=1)
    session = hub.broker.sessions["stuck"]
    assert stuck.transport.pending_bytes < BUDGET + len(PAYLOAD) + 100
    assert len(session.inflight) + len(session.pending) == 40
    received = []
    while len(received) < 40:  # the subscriber reads: each drain lets the next ones go
        batch = stuck.messages()
        assert batch, f"stalled after {len(received)}"
        received.extend(batch)
    assert [m.payload for m in received] == [PAYLOAD] * 40
    assert not session.pending and not session.inflight
    assert hub.stats.messages_dropped["queue_full"] == 0


def test_pending_messages_hold_the_routed_message_not_a_copy():
    hub = Hub(budget=BUDGET)
    stuck, pub = _stuck_subscriber(hub, 1)
    other = hub.peer("other")
    other.subscribe("big", qos=1)
    for _ in range(10):
        pub.publish("big", PAYLOAD, qos=1)
    pending = hub.broker.sessions["stuck"].pending
    assert pending
    routed = {id(message) for message in hub.events.published}
    assert {id(d.message) for d in pending} <= routed  # the very messages routed, not copies
    assert len(other.messages()) == 10  # a reading subscriber is not held up


def test_qos0_beyond_the_budget_is_dropped_and_counted():
    hub = Hub(budget=BUDGET)
    stuck, pub = _stuck_subscriber(hub, 0)
    for _ in range(10):
        pub.publish("big", PAYLOAD, qos=0)
    assert hub.stats.messages_dropped["slow_subscriber"] == 10 - 4
    assert len(stuck.messages()) == 4


def test_a_never_reading_subscriber_costs_at_most_budget_plus_its_queue():
    hub = Hub(MqttConfig(max_mqueue_len=5), budget=BUDGET)
    stuck, pub = _stuck_subscriber(hub, 1)
    for _ in range(100):
        pub.publish("big", PAYLOAD, qos=1)
    session = hub.broker.sessions["stuck"]
    assert len(session.pending) == 5
    assert stuck.transport.pending_bytes < BUDGET + len(PAYLOAD) + 100
    assert hub.stats.messages_dropped["queue_full"] == 100 - 5 - len(session.inflight)
    stuck.drop()  # clean session: everything it held goes with it
    assert "stuck" not in hub.broker.sessions


def test_the_session_queue_is_bounded_in_bytes_too():
    from appliance.config.model import LimitsConfig

    hub = Hub(limits=LimitsConfig(max_queued_bytes=5 * len(PAYLOAD)), budget=BUDGET)
    stuck, pub = _stuck_subscriber(hub, 1)
    for _ in range(100):
        pub.publish("big", PAYLOAD, qos=1)
    session = hub.broker.sessions["stuck"]
    assert len(session.pending) == 5
    assert hub.stats.messages_dropped["queue_full"] == 100 - 5 - len(session.inflight)
    received = []
    while True:
        batch = stuck.messages()
        if not batch:
            break
        received.extend(batch)
    assert len(received) == 100 - hub.stats.messages_dropped["queue_full"]  # the rest all arrive
