"""GET /api/v4/subscriptions[/{clientid}] (filters, paging) and GET /api/v4/topic-tree."""

import paho.mqtt.client as paho


def pairs(document) -> list[tuple]:
    return [(s["clientid"], s["topic"], s["qos"]) for s in document["data"]]


def test_subscriptions_list_filters_and_pages(api, connect):
    alice = connect("alice", protocol=paho.MQTTv5)
    alice.subscribe("a/b", qos=1)
    alice.subscribe("$share/workers/jobs/#", qos=2)
    bob = connect("bob")
    bob.subscribe("a/+", qos=0)
    bob.subscribe("c", qos=1)

    everything = api.ok("GET", "/api/v4/subscriptions")
    assert pairs(everything) == [("alice", "$share/workers/jobs/#", 2), ("alice", "a/b", 1),
                                 ("bob", "a/+", 0), ("bob", "c", 1)]
    assert everything["meta"]["count"] == 4

    def query(q):
        return pairs(api.ok("GET", "/api/v4/subscriptions?" + q))

    assert query("clientid=bob") == [("bob", "a/+", 0), ("bob", "c", 1)]
    assert query("topic=a/b") == [("alice", "a/b", 1)]
    assert query("qos=1") == [("alice", "a/b", 1), ("bob", "c", 1)]
    assert query("share=workers") == [("alice", "$share/workers/jobs/#", 2)]
    assert query("_match_topic=a/b") == [("alice", "a/b", 1), ("bob", "a/+", 0)]
    page = api.ok("GET", "/api/v4/subscriptions?_limit=3&_page=2")
    assert pairs(page) == [("bob", "c", 1)]
    assert page["meta"] == {"page": 2, "limit": 3, "count": 4, "hasnext": False}


def test_subscriptions_of_one_client(api, connect):
    client = connect("dev/1")
    client.subscribe("x/#", qos=1)
    connect("other").subscribe("y")
    assert api.ok("GET", "/api/v4/subscriptions/dev%2F1")["data"] == [{"clientid": "dev/1", "topic": "x/#", "qos": 1}]
    assert api.ok("GET", "/api/v4/subscriptions/nobody")["data"] == []


def test_unsubscribe_shows_at_once(api, connect):
    client = connect("c")
    client.subscribe("gone")
    client.unsubscribe("gone")
    assert api.ok("GET", "/api/v4/subscriptions")["data"] == []


def test_bad_subscription_filters_are_400(api):
    for q in ("qos=3", "qos=one", "_match_topic=a/%23", "nosuch=1"):
        reply = api.get("/api/v4/subscriptions?" + q)
        assert (reply.status, reply.json["code"]) == (400, 108), q


def test_topic_tree_is_nanomq_shaped(api, connect):
    one = connect("one")
    one.subscribe("topic123/123")
    two = connect("two")
    two.subscribe("topic123/456")
    two.subscribe("topic123")
    data = api.ok("GET", "/api/v4/topic-tree")["data"]
    assert data == [
        [{"topic": "", "cld_cnt": 1, "clientid": []}],
        [{"topic": "topic123", "cld_cnt": 2, "clientid": ["two"]}],
        [{"topic": "123", "cld_cnt": 0, "clientid": ["one"]},
         {"topic": "456", "cld_cnt": 0, "clientid": ["two"]}],
    ]


def test_topic_tree_is_cut_at_its_bound(broker_factory, api_for, mqtt):
    broker = broker_factory("limits { max_subscriptions = 0 }\n")
    client = mqtt(broker.port, "many")
    client.connect()
    client.subscribe([(f"wide/{i}", 0) for i in range(10_001)])  # one SUBSCRIBE, 10001 filters
    assert api_for(broker).ok("GET", "/api/v4/subscriptions?_limit=1")["meta"]["count"] == 10_001
    document = api_for(broker).ok("GET", "/api/v4/topic-tree")
    assert document["truncated"] is True
    entries = sum(1 + len(node["clientid"]) for level in document["data"] for node in level)
    assert entries == 10_000


def test_topic_tree_below_its_bound_is_complete_and_unmarked(api, connect):
    client = connect("few")
    for i in range(50):
        client.subscribe(f"wide/{i}/leaf")
    document = api.ok("GET", "/api/v4/topic-tree")
    assert "truncated" not in document
    assert len(document["data"][2]) == 50
    assert sum(len(node["clientid"]) for node in document["data"][3]) == 50
