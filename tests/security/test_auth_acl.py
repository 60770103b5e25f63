"""NanoMQ's ACL file: rules in order, placeholders, no_match, deny_action, and the answers a
client sees for a denied PUBLISH or SUBSCRIBE."""

import pytest

from appliance.auth.acl import covers, decide, overlaps
from appliance.broker.hooks import ClientInfo
from appliance.config import load_config_text
from security_helpers import auth_block, connected

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


def test_allow_needs_cover_but_deny_needs_only_overlap():
    assert covers("a/#", "a/+/c") and not covers("a/+", "a/#") and not covers("#", "$SYS/x")
    assert overlaps("a/b", "a/+") and overlaps("a/#", "+/x") and not overlaps("a/b", "a/c")
    deny_then_allow = rules('rules = [{permit = deny, topics = ["a/b"]}, {permit = allow}]')
    assert decide(deny_then_allow, who(), "subscribe", "a/+") is False  # would receive a/b
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
