"""A reload that changes webhook.url sends every later event, and every event still queued,
to the new endpoint; nothing is lost and the MQTT clients stay connected. Rules and headers
apply to the next event."""

import json

from tests.reload.reload_helpers import rewrite, sighup
from tests.security.security_helpers import metric
from tests.webhook.webhook_receiver import Receiver


def webhook(url: str, extra: str = "") -> str:
    return f"""webhook {{
  url = "{url}"
  pool_size = 2
  events = [ {{ event = "on_message_publish" }} ]
  {extra}
}}
"""


def published(requests) -> list[bytes]:
    return [json.loads(r.body)["payload"].encode() for r in requests]


def test_url_change_sends_queued_and_later_events_to_the_new_endpoint(broker_factory, mqtt):
    old, new = Receiver(), Receiver()
    try:
        broker = broker_factory(webhook(old.url))
        publisher = mqtt(broker.port, "pub")
        publisher.connect()
        publisher.publish("t/0", b"0", qos=1)
        old.wait_delivered(1)
        # The old endpoint stalls: what is published now waits in the queue (in flight: 2).
        old.delay = 1.5
        for n in range(1, 11):
            publisher.publish(f"t/{n}", str(n).encode(), qos=1)
        rewrite(broker, webhook(new.url, 'headers.authorization = "Bearer reload-token-123"'))
        line = sighup(broker)
        assert "webhook.url" in line and "reload-token-123" not in broker.logs()
        for n in range(11, 16):
            publisher.publish(f"t/{n}", str(n).encode(), qos=1)
        new.wait_for(lambda r: len(r.delivered()) + len(old.delivered()) >= 16)
        got_old, got_new = published(old.delivered()), published(new.delivered())
        # Nothing lost, nothing twice; the old endpoint got only what was in flight at the reload.
        assert sorted(got_old + got_new, key=int) == [str(n).encode() for n in range(16)]
        assert len(got_old) <= 1 + 2
        assert all(r.header("Authorization") == "Bearer reload-token-123" for r in new.delivered())
        assert metric(broker, "appliance_webhook_events_dropped_total") == 0.0
        assert publisher.disconnects.empty()
    finally:
        old.stop()
        new.stop()


def test_rules_change_applies_to_the_next_event(broker_factory, mqtt):
    receiver = Receiver()
    try:
        broker = broker_factory(webhook(receiver.url))
        client = mqtt(broker.port, "c")
        client.connect()
        client.publish("a", b"1", qos=1)
        receiver.wait_delivered(1)
        rewrite(broker, webhook(receiver.url).replace('{ event = "on_message_publish" }',
                                                      '{ event = "on_message_publish", topic = "only/#" }'))
        assert "webhook.events" in sighup(broker)
        client.publish("a", b"2", qos=1)
        client.publish("only/x", b"3", qos=1)
        receiver.wait_delivered(2)
        assert published(receiver.delivered()) == [b"1", b"3"]
    finally:
        receiver.stop()


def test_a_rule_for_an_optional_event_added_by_a_reload_fires(broker_factory, mqtt):
    # on_message_delivered is asked of the hooks once, not per message: a reload must ask again.
    receiver = Receiver()
    try:
        broker = broker_factory(webhook(receiver.url))
        subscriber = mqtt(broker.port, "sub")
        subscriber.connect()
        subscriber.subscribe("d/#", qos=1)
        rewrite(broker, webhook(receiver.url).replace('{ event = "on_message_publish" }',
                                                      '{ event = "on_message_delivered", topic = "d/#" }'))
        assert "webhook.events" in sighup(broker)
        publisher = mqtt(broker.port, "pub")
        publisher.connect()
        publisher.publish("d/1", b"x", qos=1)
        receiver.wait_delivered(1)
        body = json.loads(receiver.delivered()[0].body)
        assert (body["action"], body["clientid"], body["topic"]) == ("message_delivered", "sub", "d/1")
    finally:
        receiver.stop()


def test_a_larger_pool_size_posts_more_events_at_once(broker_factory, mqtt):
    receiver = Receiver()
    try:
        broker = broker_factory(webhook(receiver.url, "order = none"))
        rewrite(broker, webhook(receiver.url, "order = none").replace("pool_size = 2", "pool_size = 5"))
        assert "webhook.pool_size" in sighup(broker)
        receiver.delay = 0.5
        client = mqtt(broker.port, "c")
        client.connect()
        for n in range(10):
            client.publish(f"t/{n}", str(n).encode(), qos=1)
        receiver.wait_delivered(10)
        assert receiver.max_active == 5
    finally:
        receiver.stop()
