"""Messages from the upstream are routed like any client's: the WebHook's publish rules fire
for them, naming the bridge as the publisher; and the bridge metrics exist from the start."""

from __future__ import annotations

import json

from tests.bridge.metrics import bridge_metrics
from tests.bridge.test_bridge_mosquitto import bridge_block, connected
from tests.webhook.webhook_receiver import Receiver


def test_upstream_messages_fire_webhook_publish_rules_as_the_bridge(mosquitto_factory, broker_factory, mqtt):
    receiver = Receiver()
    try:
        upstream = mosquitto_factory()
        appliance = broker_factory(bridge_block("up", upstream.port, 4, """
 username = "edge-7"
 subscription = [ { remote_topic = "cmd/#", local_topic = "local/cmd/#", qos = 1 } ]
""") + f"""
webhook {{
    url = "{receiver.url}"
    events = [ {{ event = "on_message_publish", topic = "local/#" }} ]
}}
""")
        connected(appliance)
        cloud = mqtt(upstream.port, "cloud")
        cloud.connect()
        cloud.publish("cmd/open", "door", qos=1)
        (request,) = receiver.wait_delivered(1)
    finally:
        receiver.stop()
    body = json.loads(request.body)
    assert body["topic"] == "local/cmd/open"
    assert body["payload"] == "door"
    assert body["from_client_id"] == "bridge-up"  # the bridge's clientid
    assert body["from_username"] == "edge-7"  # the bridge's username


def test_metrics_exist_at_zero_before_any_traffic(mosquitto_factory, broker_factory):
    upstream = mosquitto_factory()
    appliance = broker_factory(bridge_block("up", upstream.port, 5, ' forwards = [ "a/#" ]'))
    connected(appliance)
    metrics = bridge_metrics(appliance)
    assert metrics["appliance_bridge_up"] == 1
    assert metrics["appliance_bridge_messages_forwarded_total"] == 0
    assert metrics["appliance_bridge_messages_received_total"] == 0
    assert metrics["appliance_bridge_queue_depth"] == 0
    assert metrics["appliance_bridge_reconnects_total"] == 0
    for reason in ("queue_full", "refused", "too_large", "bad_topic", "loop", "shutdown"):
        assert metrics[f'appliance_bridge_messages_dropped_total{{reason="{reason}"}}'] == 0
    assert "appliance_bridge_ack_rtt_seconds_count" in metrics
