"""kill -9 of the real broker (subprocess) while paho clients publish QoS 1 and the endpoint is
slow: after a restart on the same spool, every publish the broker acknowledged (PUBACK) reached
the endpoint, per client in order, with duplicates bounded by pool_size and counted.

That holds because the broker sends a PUBACK only once the stage's `when_durable` has
answered: without that barrier a PUBACK can overtake the spool's commit and the acknowledged
event is lost in a crash."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections import Counter

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

POOL = 8
CLIENTS = 4

def config(url, spool):
    return f"""
webhook {{
    url = "{url}"
    body.encoding = base64
    pool_size = {POOL}
    queue {{ spool_dir = "{spool}", sync = fsync }}
    retry {{ backoff_min = 20ms, backoff_max = 200ms }}
    events = [ {{ event = "on_message_publish", topic = "crash/#" }} ]
}}
"""


def metric(broker, name):
    request = urllib.request.Request(f"http://127.0.0.1:{broker.http_port}/metrics")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"admin:test-secret").decode())
    text = urllib.request.urlopen(request, timeout=10).read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_kill_9_of_the_broker_loses_no_acknowledged_publish(broker_factory, receiver, tmp_path):
    receiver.delay = 0.02  # slower than the stream: a backlog builds up
    spool = tmp_path / "spool"
    broker = broker_factory(config(receiver.url, spool))
    clients, sent = [], []
    for index in range(CLIENTS):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub{index}")
        client.max_inflight_messages_set(20)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        clients.append(client)
        sent.append([client.publish(f"crash/{index}", f"pub{index}-{n}".encode(), qos=1) for n in range(400)])
    while sum(info.is_published() for infos in sent for info in infos) < 300:
        receiver.wait_for(lambda r: True, timeout=0.05)
    broker.kill()
    acknowledged = {(f"pub{i}", n) for i, infos in enumerate(sent) for n, info in enumerate(infos)
                    if info.is_published()}
    for client in clients:
        client.loop_stop()
    receiver.delay = 0.0

    again = broker_factory(config(receiver.url, spool))

    def arrived(r):
        return [tuple(base64.b64decode(json.loads(q.body)["payload"]).decode().split("-")) for q in r.requests]

    receiver.wait_for(lambda r: acknowledged <= {(c, int(n)) for c, n in arrived(r)}, timeout=60)
    events = [(c, int(n)) for c, n in arrived(receiver)]
    for index in range(CLIENTS):
        firsts = list(dict.fromkeys(n for c, n in events if c == f"pub{index}"))
        assert firsts == sorted(firsts)
    duplicates = sum(k - 1 for k in Counter(events).values())
    assert duplicates <= POOL
    assert duplicates <= metric(again, "appliance_webhook_events_redelivered_total")
