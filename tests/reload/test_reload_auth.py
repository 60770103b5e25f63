"""A reload changes what connected clients may do (ACL), keeps them connected, and removes
the subscriptions the new rules deny; the password file applies to the next CONNECT."""

import paho.mqtt.client as paho

from tests.reload.reload_helpers import post_reload, rewrite, sighup
from tests.security.security_helpers import metric

OPEN_ACL = "rules = [ {permit = allow} ]\n"
DENY_SECRET = """rules = [
  {permit = deny, action = pubsub, topics = ["secret/#"]}
  {permit = allow}
]
"""


def login(mqtt, port: int, client_id: str, password: str) -> int:
    client = mqtt(port, client_id)
    client.client.username_pw_set("alice", password)
    return client.connect()[1].value, client


def acl_config(tmp_path, rules: str, options: str = "") -> str:
    (tmp_path / "nanomq_acl.conf").write_text(rules)
    return 'auth {\n' + options + '\nacl = {include "nanomq_acl.conf"}\n}\n'


def test_a_new_acl_applies_to_connected_clients_and_removes_denied_subscriptions(broker_factory, mqtt, tmp_path):
    broker = broker_factory(acl_config(tmp_path, OPEN_ACL))
    subscriber = mqtt(broker.port, "sub")
    subscriber.connect()
    assert subscriber.subscribe("secret/a", qos=1) == [1]
    assert subscriber.subscribe("public/a", qos=1) == [1]
    publisher = mqtt(broker.port, "pub")
    publisher.connect()
    publisher.publish("secret/a", b"before", qos=1)
    assert subscriber.expect_message().payload == b"before"

    (tmp_path / "nanomq_acl.conf").write_text(DENY_SECRET)
    line = sighup(broker)
    assert "changed auth.acl" in line

    # Both stay connected; the subscription the new ACL denies is gone, the other stays.
    publisher.publish("secret/a", b"after", qos=1)  # denied to the publisher too: not routed
    publisher.publish("public/a", b"still", qos=1)
    assert subscriber.expect_message().payload == b"still"
    subscriber.expect_no_message()
    assert subscriber.disconnects.empty() and publisher.disconnects.empty()
    # A new SUBSCRIBE to it is refused now.
    assert subscriber.subscribe("secret/b", qos=1) == [0x80]
    # The subscription is removed, not only filtered: an allowed publisher (none is) would
    # not reach it either; the broker counts it as a denied subscribe.
    assert metric(broker, "appliance_acl_denied_total", action="subscribe") >= 2


def test_with_deny_action_disconnect_a_v5_client_whose_subscription_is_revoked_gets_0x87(
        broker_factory, mqtt, tmp_path):
    broker = broker_factory(acl_config(tmp_path, OPEN_ACL, "deny_action = disconnect"))
    revoked = mqtt(broker.port, "v5-revoked", protocol=paho.MQTTv5)
    revoked.connect()
    revoked.subscribe("secret/a", qos=1)
    untouched = mqtt(broker.port, "v5-untouched", protocol=paho.MQTTv5)
    untouched.connect()
    untouched.subscribe("public/a", qos=1)

    (tmp_path / "nanomq_acl.conf").write_text(DENY_SECRET)
    sighup(broker)
    assert revoked.disconnects.get(timeout=10) == 0x87  # Not authorized
    untouched.roundtrip()
    assert untouched.disconnects.empty()


def test_the_password_file_applies_to_the_next_connect_and_keeps_connected_clients(broker_factory, mqtt, tmp_path):
    (tmp_path / "nanomq_pwd.conf").write_text('alice: "old-pass"\n')
    auth = 'auth {\nallow_anonymous = false\npassword = {include "nanomq_pwd.conf"}\n}\n'
    broker = broker_factory(auth)
    code, kept = login(mqtt, broker.port, "kept", "old-pass")
    assert code == 0

    (tmp_path / "nanomq_pwd.conf").write_text('alice: "new-pass"\n')
    line = sighup(broker)
    assert "auth.password" in line and "new-pass" not in broker.logs() and "old-pass" not in broker.logs()

    kept.roundtrip()
    assert kept.disconnects.empty()
    assert login(mqtt, broker.port, "late-old", "old-pass")[0] != 0
    assert login(mqtt, broker.port, "late-new", "new-pass")[0] == 0


def test_an_auth_block_added_by_a_reload_restricts_clients_already_connected(broker_factory, mqtt, tmp_path):
    broker = broker_factory()
    subscriber = mqtt(broker.port, "early")
    subscriber.connect()
    assert subscriber.subscribe("secret/x", qos=1) == [1]
    rewrite(broker, acl_config(tmp_path, DENY_SECRET))
    status, answer = post_reload(broker)
    assert status == 200 and answer["code"] == 0
    assert "auth" in answer["data"]["changed"]
    assert subscriber.subscribe("secret/y", qos=1) == [0x80]
    publisher = mqtt(broker.port, "late")
    publisher.connect()
    publisher.publish("secret/x", b"x", qos=1)
    subscriber.expect_no_message()
    assert subscriber.disconnects.empty()
