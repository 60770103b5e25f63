"""Issue 11 "Another user's session": a session belongs to the identity that made it.
In-process, over the real AccessControl and Gate: alice may not resume, end, or take
over bob's session by using his client id; anonymous deployments behave as before. And
a shared subscription never hands its copy to a member whose ACL forbids the topic."""

import pytest

from appliance.auth.access import AccessControl
from appliance.config import load_config_text
from tests.broker.inproc import Hub

AUTH = """auth {
  allow_anonymous = %s
  password { alice = "alicepw", bob = "bobpw" }
  acl { rules = [
    {permit = deny, username = alice, action = subscribe, topics = ["secret/#"]}
    {permit = allow}
  ] }
}"""


def _hub(anonymous: bool = False) -> Hub:
    auth = load_config_text(AUTH % ("true" if anonymous else "false"), env={}).config.auth
    return Hub(access=AccessControl(auth))


def _v5(props=True):
    return {"session_expiry_interval": 600} if props else None


@pytest.mark.parametrize("version", [4, 5])
def test_another_user_cannot_resume_an_offline_session_or_get_its_queue(version):
    hub = _hub()
    bob = hub.peer("bob-dev", version=version, clean=False, username="bob", password=b"bobpw",
                   properties=_v5(version == 5))
    bob.subscribe("secret/#", qos=1)
    bob.drop()
    hub.peer("bob2", username="bob", password=b"bobpw").publish("secret/plan", b"the plan", qos=1)
    alice = hub.peer("bob-dev", version=version, connect=False)
    ack = alice.connect(clean=False, username="alice", password=b"alicepw", properties=_v5(version == 5))
    assert ack.reason_code == (0x87 if version == 5 else 5)
    assert alice.closed and alice.messages() == []
    assert hub.stats.sessions_refused["other_owner"] == 1
    assert hub.stats.connections_refused["not_authorized"] == 1
    # bob's session is untouched: he gets his message.
    again = hub.peer("bob-dev", version=version, connect=False)
    assert again.connect(clean=False, username="bob", password=b"bobpw", properties=_v5(version == 5)).session_present
    assert again.expect_message().payload == b"the plan"


def test_another_user_cannot_take_over_a_live_connection_or_end_the_session_with_clean_start():
    hub = _hub()
    bob = hub.peer("bob-dev", clean=False, username="bob", password=b"bobpw")
    bob.subscribe("secret/#", qos=1)
    alice = hub.peer("bob-dev", connect=False)
    assert alice.connect(clean=True, username="alice", password=b"alicepw").reason_code == 5
    assert not bob.closed
    hub.peer("pub", username="bob", password=b"bobpw").publish("secret/x", b"still mine", qos=1)
    assert bob.expect_message().payload == b"still mine"
    assert hub.events.connacks[-2:] == [("bob-dev", 0x87), ("pub", 0)]


def test_anonymous_clients_cannot_claim_a_users_session_when_anonymous_access_is_on():
    hub = _hub(anonymous=True)
    hub.peer("dev", clean=False, username="bob", password=b"bobpw").drop()
    assert hub.peer("dev", connect=False).connect(clean=False).reason_code == 5
    assert hub.peer("dev", connect=False).connect(clean=False, username="bob", password=b"bobpw").session_present


def test_the_same_user_resumes_and_takes_over_as_before():
    hub = _hub()
    first = hub.peer("dev", clean=False, username="bob", password=b"bobpw")
    second = hub.peer("dev", connect=False)
    assert second.connect(clean=False, username="bob", password=b"bobpw").session_present
    assert first.closed


def test_without_an_auth_block_client_ids_are_shared_as_before():
    hub = Hub()  # anonymous deployment: usernames are not vouched for
    first = hub.peer("dev", clean=False, username="bob")
    second = hub.peer("dev", connect=False)
    assert second.connect(clean=False, username="alice").session_present
    assert first.closed


def test_a_shared_subscription_skips_a_member_whose_acl_forbids_the_topic():
    hub = _hub()
    alice = hub.peer("alice-1", username="alice", password=b"alicepw")
    bob = hub.peer("bob-1", username="bob", password=b"bobpw")
    assert alice.subscribe("$share/g/+/plan", qos=1) == [1]  # a wildcard not denied whole
    assert bob.subscribe("$share/g/+/plan", qos=1) == [1]
    pub = hub.peer("pub", username="bob", password=b"bobpw")
    for n in range(4):
        pub.publish("secret/plan", b"s%d" % n, qos=1)
        pub.publish("public/plan", b"p%d" % n, qos=1)
    got_alice = [m.payload for m in alice.messages()]
    got_bob = [m.payload for m in bob.messages()]
    assert not any(p.startswith(b"s") for p in got_alice)
    assert sorted(p for p in got_bob if p.startswith(b"s")) == [b"s0", b"s1", b"s2", b"s3"]  # none lost
    assert len(got_alice) + len(got_bob) == 8


def test_over_sockets_alice_is_refused_bobs_session_and_it_is_counted(broker_factory, tmp_path):
    """The issue's scenario with real sockets: bob leaves a persistent session with a
    queued secret; alice, using bob's client id, is refused and gets nothing."""
    from appliance.mqtt.packets import Connect
    from tests.broker.raw import RawClient
    from tests.security.security_helpers import auth_block, connack, metric

    broker = broker_factory(auth_block(
        tmp_path, passwords="alice: alicepw\nbob: bobpw\n",
        acl='rules = [{permit = deny, username = alice, action = subscribe, topics = ["secret/#"]}, '
            '{permit = allow}]'))
    bob = RawClient(broker.port, "bob-dev", version=4, connect=False)
    bob.send(Connect("bob-dev", 4, False, 60, username="bob", password=b"bobpw"))
    assert bob.expect("ConnAck").reason_code == 0
    assert bob.subscribe("secret/#", qos=1) == [1]
    bob.sock.close()
    code, publisher = connack(broker.port, "bob-pub", "bob", b"bobpw", version=4)
    assert code == 0
    publisher.publish("secret/plan", b"the plan", qos=1, packet_id=1)
    publisher.expect("PubAck")
    alice = RawClient(broker.port, "bob-dev", version=4, connect=False)
    alice.send(Connect("bob-dev", 4, False, 60, username="alice", password=b"alicepw"))
    assert alice.expect("ConnAck").reason_code == 5
    alice.expect_closed()
    assert metric(broker, "appliance_sessions_refused_total", reason="other_owner") == 1
