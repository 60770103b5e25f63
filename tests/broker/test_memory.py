"""What a QoS 1 subscriber that never reads costs the broker: its outbox budget plus its
session queue, freed when it goes (issue 10). RSS of a real broker subprocess."""

import socket
import time

from appliance.mqtt.codec import encode
from appliance.mqtt.packets import Publish
from tests.broker.raw import RawClient
from tests.conftest import raw_socket

MB = 1024 * 1024
PAYLOAD = b"m" * (256 * 1024)
MESSAGES = 2400
BATCH = 50  # PUBLISHes sent before their PUBACKs are read


def _rss(broker) -> int:
    with open(f"/proc/{broker.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_never_reading_qos1_subscriber_costs_a_bounded_amount_and_is_freed(broker):
    stuck = raw_socket(broker.port)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02st")  # clean session
    assert stuck.recv(4) == b"\x20\x02\x00\x00"
    stuck.sendall(b"\x82\x08\x00\x01\x00\x03big\x01")  # SUBSCRIBE big QoS 1, then never read
    assert stuck.recv(5) == b"\x90\x03\x00\x01\x01"
    publisher = RawClient(broker.port, "pub")
    publisher.roundtrip()
    baseline = peak = _rss(broker)
    for start in range(1, MESSAGES + 1, BATCH):
        publisher.send_bytes(b"".join(encode(Publish("big", PAYLOAD, 1, False, False, i, {}), 4)
                                      for i in range(start, start + BATCH)))
        for _ in range(BATCH):
            publisher.expect("PubAck")
        peak = max(peak, _rss(broker))
    growth = peak - baseline
    assert growth < 150 * MB, f"grew {growth / MB:.0f} MB for a subscriber that never reads"
    stuck.close()
    publisher.roundtrip()
    after = _rss(broker)
    for _ in range(50):  # the socket's end is seen on the broker's next loop turns
        if after - baseline < 40 * MB:
            break
        publisher.roundtrip()
        time.sleep(0.1)
        after = _rss(broker)
    assert after - baseline < 40 * MB, (
        f"still {(after - baseline) / MB:.0f} MB over the baseline after the subscriber left "
        f"(peak was +{growth / MB:.0f} MB)")
