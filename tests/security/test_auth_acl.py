"""NanoMQ's ACL file: rules in order, placeholders, no_match, deny_action, and the answers a
client sees for a denied PUBLISH or SUBSCRIBE."""

import pytest

from appliance.auth.acl import covers, decide
from appliance.broker.hooks import ClientInfo
from appliance.config import load_config_text
from appliance.mqtt.packets import Publish
from security_helpers import auth_block, connected, metric
from tests.broker.raw import RawClient

ACL = """\
rules = [
  ## NanoMQ's own example first
  {"permit": "allow", "username": "dashboard", "action": "subscribe", "topics": ["$SYS/#"]}
  {"permit": "deny", "username": "#", "action": "subscribe", "topics": ["$SYS/#"]}
  {permit = allow, action = pubsub, topics = ["users/${username}/#", "devices/${clientid}"]}
  {permit = deny, clientid = "spy", action = subscribe, topics = ["secret/#"]}
  {permit = allow, and = [{username = ops}, {ipaddr = "127.0.0.1"}], topics = ["ops/#"]}
  {permit = allow, action = subscribe, topics = ["public/#", "secret/+"]}
  {permit = allow, action = publish, topics = ["public/#", "secret/x"]}
]
"""


def rules(text=ACL):
    return load_config_text(f"auth {{ acl {{ {text} }} }}", env={}).config.auth.acl


def who(client_id="c1", username=None, ip="10.0.0.1"):
    return ClientInfo(client_id, username, 5, 60, (ip, 5555))


@pytest.mark.parametrize("client, action, topic, verdict", [
    (who(username="dashboard"), "subscribe", "$SYS/brokers", True),
    (who(username="alice"), "subscribe", "$SYS/brokers", False),
    (who(username="alice"), "subscribe", "$SYS/#", False),
    (who(), "subscribe", "$SYS/+/x", False),  # "#" also means clients without a username
    (who(), "subscribe", "#", None),  # no $SYS topic reaches "#" anyway
    (who(username="alice"), "publish", "users/alice/temp", True),
    (who(username="alice"), "subscribe", "users/alice/#", True),
    (who(username="alice"), "publish", "users/bob/temp", None),
    (who(client_id="dev7"), "publish", "devices/dev7", True),
    (who(client_id="dev7"), "publish", "devices/dev8", None),
    (who(client_id="spy"), "subscribe", "secret/+", False),
    (who(client_id="other"), "subscribe", "secret/+", True),
    (who(username="ops", ip="127.0.0.1"), "publish", "ops/restart", True),
    (who(username="ops", ip="10.9.9.9"), "publish", "ops/restart", None),
    (who(), "publish", "secret/x", True),
    (who(), "publish", "secret/y", None),
])
def test_first_matching_rule_decides(client, action, topic, verdict):
    assert decide(rules(), client, action, topic) is verdict


@pytest.mark.parametrize("name", ["+", "#", "a/b", ""])
def test_a_name_with_wildcards_or_slashes_cannot_widen_a_placeholder(name):
    client = who(client_id=name or "c", username=name)
    assert decide(rules(), client, "subscribe", "users/a/b/#") is not True
    assert decide(rules(), client, "publish", "users/x/y") is None


def test_a_rule_decides_only_a_subscription_it_covers_whole():
    assert covers("a/#", "a/+/c") and not covers("a/+", "a/#") and not covers("#", "$SYS/x")
    deny_then_allow = rules('rules = [{permit = deny, topics = ["a/b"]}, {permit = allow}]')
    # As mosquitto: the wildcard is granted, and a/b is filtered out message by message.
    assert decide(deny_then_allow, who(), "subscribe", "a/+") is True
    assert decide(deny_then_allow, who(), "subscribe", "a/b") is False
    assert decide(deny_then_allow, who(), "subscribe", "a/c") is True


# -- over the wire -------------------------------------------------------------------

@pytest.fixture
def acl_broker(broker_factory, tmp_path):
    def start(options=""):
        return broker_factory(auth_block(tmp_path, acl=ACL, options=options))
    return start


def test_denied_qos1_publish_gets_puback_not_authorized_and_is_not_routed(acl_broker):
    broker = acl_broker("no_match = deny")
    watcher = connected(broker.port, "watcher", "alice")
    assert watcher.subscribe("users/alice/#", qos=1) == [1]
    raw = connected(broker.port, "bob-device", "bob")
    raw.publish("users/alice/inbox", b"forged", qos=1, packet_id=7)
    ack = raw.expect("PubAck")
    assert (ack.packet_id, ack.reason_code) == (7, 0x87)
    raw.publish("users/bob/ok", b"fine", qos=1, packet_id=8)
    assert raw.expect("PubAck").reason_code in (0, 0x10)
    watcher.roundtrip()
    assert watcher.received == []


def test_denied_qos0_publish_is_dropped_silently_and_connection_stays(acl_broker):
    broker = acl_broker("no_match = deny")
    watcher = connected(broker.port, "watcher", "alice")
    watcher.subscribe("users/alice/#", qos=0)
    raw = connected(broker.port, "mallory", "mallory")
    raw.publish("users/alice/x", b"forged", qos=0)
    raw.roundtrip()  # still connected
    raw.publish("users/mallory/x", b"own", qos=0)
    raw.roundtrip()
    watcher.roundtrip()
    assert watcher.received == []


@pytest.mark.parametrize("version, denied", [(5, 0x87), (4, 0x80)])
def test_denied_subscription_gets_suback_failure(acl_broker, version, denied):
    broker = acl_broker("no_match = deny")
    raw = connected(broker.port, "spy", "someone", version=version)
    assert raw.subscribe("secret/+", qos=1) == [denied]
    assert raw.subscribe("public/#", qos=1) == [1]


def test_no_match_allow_lets_unlisted_topics_through(acl_broker):
    broker = acl_broker("no_match = allow")
    raw = connected(broker.port, "c", "carol")
    assert raw.subscribe("anything/else", qos=0) == [0]


def test_deny_action_disconnect_closes_with_not_authorized(acl_broker):
    broker = acl_broker("no_match = deny\ndeny_action = disconnect")
    raw = connected(broker.port, "d", "dave")
    raw.publish("users/erin/x", b"forged", qos=1, packet_id=1)
    sent = raw.expect_closed()
    assert sent[:1] == b"\xe0" and sent[2] == 0x87  # DISCONNECT, Not authorized


def test_placeholder_rule_works_end_to_end(acl_broker, mqtt):
    broker = acl_broker("no_match = deny")
    owner = connected(broker.port, "dev-42", "frank")
    assert owner.subscribe("devices/dev-42", qos=1) == [1]
    assert owner.subscribe("devices/dev-43", qos=1) == [0x87]
    sender = connected(broker.port, "dev-43", "gina")
    sender.publish("devices/dev-42", b"x", qos=1, packet_id=1)
    assert sender.expect("PubAck").reason_code == 0x87


def test_will_to_a_forbidden_topic_is_discarded(acl_broker):
    from appliance.mqtt.packets import Will
    from security_helpers import connack

    broker = acl_broker("no_match = deny")
    watcher = connected(broker.port, "watcher", "alice")
    watcher.subscribe("users/alice/#", qos=0)
    code, raw = connack(broker.port, "evil", "mallory", will=Will("users/alice/will", b"forged"))
    assert code == 0
    raw.sock.close()  # no DISCONNECT: the will would fire
    watcher.roundtrip()
    broker.wait_for_log(r"evil@.*will topic not authorized")
    watcher.roundtrip()
    assert watcher.received == []


# -- a deny rule and wildcard subscribers (mosquitto's rule) --------------------------

DENY_ACL = """\
rules = [
  {permit = deny, action = subscribe, topics = ["test/nosubscribe"]}
  {permit = deny, username = alice, action = subscribe, topics = ["secret/#"]}
]
"""


def _topics(raw):
    """Topics of the PUBLISH packets `raw` got until now (a PINGREQ's answer ends them)."""
    from appliance.mqtt.packets import PingReq

    raw.send(PingReq())
    topics = []
    while type(packet := raw.next_packet()).__name__ != "PingResp":
        if type(packet).__name__ == "Publish":
            topics.append(packet.topic)
    return sorted(topics)


@pytest.mark.parametrize("wildcard", ["#", "+/+", "$share/x/#"])
def test_a_wildcard_subscription_is_granted_and_denied_topics_are_filtered(broker_factory, tmp_path, wildcard):
    broker = broker_factory(auth_block(tmp_path, acl=DENY_ACL, options="no_match = allow"))
    alice = connected(broker.port, "alice-dev", "alice")
    assert alice.subscribe(wildcard, qos=1) == [1]
    assert alice.subscribe("secret/#", qos=1) == [0x87]  # what a rule covers whole is refused
    assert alice.subscribe("secret/plan", qos=1) == [0x87]
    bob = connected(broker.port, "bob-dev", "bob")
    assert bob.subscribe(wildcard.replace("/x/", "/y/"), qos=0) == [0]  # a group of his own
    for topic in ("secret/plan", "test/nosubscribe", "public/x"):
        bob.publish(topic, b"m", qos=0)
    bob_got = _topics(bob)  # and so everything bob sent has been routed
    assert _topics(alice) == ["public/x"]
    assert bob_got == ["public/x", "secret/plan"]  # the rule about alice is not bob's
    assert metric(broker, "appliance_acl_denied_total", action="receive") == 3


def test_retained_and_queued_messages_obey_the_read_check_too(broker_factory, tmp_path):
    from appliance.mqtt.packets import Connect

    broker = broker_factory(auth_block(tmp_path, acl=DENY_ACL, options="no_match = allow"))
    bob = connected(broker.port, "bob-dev", "bob")
    bob.send(Publish("secret/retained", b"r", 0, True))
    bob.send(Publish("public/retained", b"r", 0, True))
    bob.roundtrip()
    alice = RawClient(broker.port, "alice-dev", connect=False)
    alice.send(Connect("alice-dev", 4, clean_start=False, username="alice"))
    assert alice.expect("ConnAck").reason_code == 0
    assert alice.subscribe("+/+", qos=1) == [1]
    assert _topics(alice) == ["public/retained"]
    alice.sock.close()  # offline: its session queues QoS 1 messages
    bob.publish("secret/queued", b"q", qos=1, packet_id=1)
    bob.publish("public/queued", b"q", qos=1, packet_id=2)
    assert [bob.expect("PubAck").packet_id for _ in range(2)] == [1, 2]
    alice = RawClient(broker.port, "alice-dev", connect=False)
    alice.send(Connect("alice-dev", 4, clean_start=False, username="alice"))
    assert alice.expect("ConnAck").session_present
    assert _topics(alice) == ["public/queued"]
