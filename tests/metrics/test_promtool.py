"""`promtool check metrics` (Debian package `prometheus`) accepts what the broker's /metrics
serves once MQTT and webhook traffic has filled in every labelled series."""

import subprocess

WEBHOOK = """
webhook {{
  url = "{url}"
  events = [ {{ event = "on_client_connack" }}, {{ event = "on_message_publish" }} ]
}}
"""


def test_promtool_accepts_the_metrics_endpoint_under_traffic(broker_factory, mqtt, hook_receiver, fetch, promtool):
    broker = broker_factory(WEBHOOK.format(url=hook_receiver.url))
    client = mqtt(broker.port, "client")
    client.connect()
    client.subscribe("t/#", qos=1)
    client.publish("t/1", b"x", qos=1)
    client.expect_message()
    client.publish("nobody", b"x", qos=0)
    assert hook_receiver.wait_for(3)
    text = fetch(f"http://127.0.0.1:{broker.http_port}/metrics").body
    assert b"appliance_webhook_request_duration_seconds_bucket" in text

    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)

    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout + result.stderr == b""
