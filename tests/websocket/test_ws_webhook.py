"""Webhook events for WebSocket clients are TCP clients' events: same bodies, same reasons."""

import json

import pytest

from tests.webhook.test_end_to_end import ALL, webhook_block
from tests.webhook.webhook_receiver import Receiver
from ws_helpers import WsMqttClient, ws_listener


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_connack_publish_and_disconnect_reach_the_webhook(broker_factory, receiver):
    broker = broker_factory(ws_listener() + webhook_block(receiver.url + "/mqtt", ALL), listeners=2)
    dashboard = WsMqttClient(broker.mqtt_ports["ws"], "dash-1", username="ui")
    dashboard.connect()
    dashboard.publish("a/panel", b"clicked", qos=1)
    dashboard.close()  # dropped without DISCONNECT or Close: reason tcp_closed, as for TCP
    connack, publish, disconnected = (json.loads(r.body) for r in receiver.wait_delivered(3))
    assert (connack["action"], connack["clientid"], connack["conn_ack"], connack["username"]) == (
        "client_connack", "dash-1", "success", "ui")
    assert (publish["action"], publish["topic"], publish["payload"], publish["from_client_id"]) == (
        "message_publish", "a/panel", "clicked", "dash-1")
    assert (disconnected["action"], disconnected["clientid"], disconnected["reason"]) == (
        "client_disconnected", "dash-1", "tcp_closed")
