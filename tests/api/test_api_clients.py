"""GET /api/v4/clients (filters, paging), /clients/{clientid}, /clients/username/{username},
and DELETE /clients/{clientid}: a kick really disconnects, and ends the session."""

import paho.mqtt.client as paho
import pytest

from tests.api.conftest import eventually
from tests.conftest import TIMEOUT


def ids(document) -> list[str]:
    return [client["client_id"] for client in document["data"]]


def test_a_connected_client_is_listed_with_nanomq_fields(api, connect, broker):
    client = connect("sensor-1", protocol=paho.MQTTv5, username="alice", keepalive=42)
    client.subscribe("a/b")
    document = api.ok("GET", "/api/v4/clients")
    assert ids(document) == ["sensor-1"]
    record = document["data"][0]
    assert record["username"] == "alice"
    assert record["keepalive"] == 42
    assert record["conn_state"] == "connected" and record["connected"] is True
    assert (record["proto_name"], record["proto_ver"]) == ("MQTT", 5)
    assert record["ipv4"] == "127.0.0.1" and record["port"] > 0
    assert record["subscriptions_cnt"] == 1
    assert document["meta"] == {"page": 1, "limit": 10000, "count": 1, "hasnext": False}


def test_paging_walks_every_client_once_in_client_id_order(api, connect, broker):
    names = [f"c{i:02d}" for i in range(7)]
    for name in reversed(names):
        connect(name)
    seen = []
    for page in (1, 2, 3):
        document = api.ok("GET", f"/api/v4/clients?_page={page}&_limit=3")
        assert document["meta"] == {"page": page, "limit": 3, "count": 7, "hasnext": page < 3}
        seen += ids(document)
    assert seen == names
    assert ids(api.ok("GET", "/api/v4/clients?_page=4&_limit=3")) == []
    assert ids(api.ok("GET", "/api/v4/clients?page=2&limit=5")) == names[5:]  # EMQX's other spelling


def test_filters_nanomq_supports(api, connect, broker):
    connect("v3-alice", protocol=paho.MQTTv31, username="alice")
    connect("v4-alice", username="alice")
    connect("v5-bob", protocol=paho.MQTTv5, username="bob")
    persistent = connect("v4-away", clean=False, username="carol")
    persistent.disconnect()
    assert eventually(lambda: ids(api.ok("GET", "/api/v4/clients?conn_state=disconnected")) == ["v4-away"])

    def query(q):
        return ids(api.ok("GET", "/api/v4/clients?" + q))

    assert query("username=alice") == ["v3-alice", "v4-alice"]
    assert query("clientid=v5-bob") == ["v5-bob"]
    assert query("proto_ver=5") == ["v5-bob"]
    assert query("proto_ver=4&username=alice") == ["v4-alice"]
    assert query("proto_name=MQIsdp") == ["v3-alice"]
    assert query("conn_state=connected") == ["v3-alice", "v4-alice", "v5-bob"]
    assert query("conn_state=idle") == []
    assert query("clean_start=true") == ["v3-alice", "v4-alice"]
    assert query("_like_clientid=alice") == ["v3-alice", "v4-alice"]
    assert query("_like_username=ob") == ["v5-bob"]
    away = api.ok("GET", "/api/v4/clients/v4-away")["data"][0]
    assert (away["connected"], away["clean_start"], away["username"]) == (False, None, "")


def test_lookup_by_client_id_and_by_username(api, connect, broker):
    connect("dev/7 ü", username="ops team")  # a slash and non-ASCII in the id
    connect("other", username="ops team")
    one = api.ok("GET", "/api/v4/clients/dev%2F7%20%C3%BC")
    assert ids(one) == ["dev/7 ü"]
    assert ids(api.ok("GET", "/api/v4/clients/username/ops%20team")) == ["dev/7 ü", "other"]
    # NanoMQ and EMQX answer an unknown id with an empty list, not an error.
    assert api.ok("GET", "/api/v4/clients/nobody")["data"] == []


def test_listing_is_capped_at_the_largest_page(api):
    reply = api.get("/api/v4/clients?_limit=1000000")
    assert (reply.status, reply.json["code"]) == (400, 108)
    assert "10000" in reply.json["message"]


# -- kick ----------------------------------------------------------------------------

def test_kick_sends_a_v5_client_administrative_action_and_closes(api, connect, broker):
    client = connect("to-kick", protocol=paho.MQTTv5)
    assert api.ok("DELETE", "/api/v4/clients/to-kick") == {"code": 0}
    reason = client.disconnects.get(timeout=TIMEOUT)
    assert reason.value == 0x98  # Administrative action
    assert eventually(lambda: api.ok("GET", "/api/v4/clients")["data"] == [])


def test_kick_closes_a_v3_connection_and_ends_its_session(api, connect, broker):
    client = connect("keeper", clean=False)
    client.subscribe("kept/#", qos=1)
    api.ok("DELETE", "/api/v4/clients/keeper")
    client.disconnects.get(timeout=TIMEOUT)
    assert eventually(lambda: api.ok("GET", "/api/v4/clients")["data"] == [])
    again = connect("keeper", clean=False)
    flags, reason, _ = again.connack
    assert flags.session_present is False  # the session went with the connection
    assert api.ok("GET", "/api/v4/subscriptions/keeper")["data"] == []


def test_kicked_clients_will_is_published(api, connect, broker):
    watcher = connect("watcher")
    watcher.subscribe("wills/#")
    doomed = connect("doomed", protocol=paho.MQTTv5, will={"topic": "wills/doomed", "payload": b"gone", "qos": 1})
    api.ok("DELETE", "/api/v4/clients/doomed")
    message = watcher.expect_message()
    assert (message.topic, message.payload) == ("wills/doomed", b"gone")


def test_kick_removes_an_offline_session(api, connect, broker):
    away = connect("away", clean=False)
    away.subscribe("x/#", qos=1)
    away.disconnect()
    assert eventually(lambda: ids(api.ok("GET", "/api/v4/clients?conn_state=disconnected")) == ["away"])
    api.ok("DELETE", "/api/v4/clients/away")
    assert api.ok("GET", "/api/v4/clients")["data"] == []
    flags, _, _ = connect("away", clean=False).connack
    assert flags.session_present is False


def test_kicking_an_unknown_client_is_404_code_112(api, connect, broker):
    bystander = connect("bystander")
    reply = api.delete("/api/v4/clients/nobody")
    assert (reply.status, reply.json["code"]) == (404, 112)
    assert "nobody" in reply.json["message"]
    bystander.roundtrip()  # still connected
    assert api.delete("/api/v4/clients").status == 400


@pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5])
def test_kicked_client_can_connect_again(api, connect, broker, protocol):
    first = connect("comeback", protocol=protocol)
    api.ok("DELETE", "/api/v4/clients/comeback")
    first.disconnects.get(timeout=TIMEOUT)
    second = connect("comeback", protocol=protocol)
    second.roundtrip()
    assert ids(api.ok("GET", "/api/v4/clients")) == ["comeback"]
