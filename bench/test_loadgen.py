"""The load generator's counting, fed bytes directly: loss, duplicates, odd packets, PUBACKs."""
import socket

import pytest

from bench import wire
from bench.loadgen import ProtocolFailure, Publisher, Subscriber


def publishes(layout, stamps, pid_start=1, dup=False):
    out = bytearray()
    for i, (pub, seq) in enumerate(stamps):
        pkt = bytearray(layout.template)
        if layout.qos:
            wire.STAMP_WITH_PID.pack_into(pkt, layout.pid_offset, pid_start + i, pub, seq, 0)
        else:
            wire.STAMP.pack_into(pkt, layout.stamp_offset, pub, seq, 0)
        if dup:
            pkt[0] |= 0x08
        out += pkt
    return bytes(out)


@pytest.fixture
def sock():
    a, b = socket.socketpair()
    yield a
    a.close()
    b.close()


def feed(conn, data, *args):
    conn.buf[conn.end:conn.end + len(data)] = data
    conn.end += len(data)
    conn.consume(*args)


def subscriber(sock, qos, publishers=2):
    return Subscriber(sock, wire.PublishLayout("bench/00001/p/000", qos, 64), publishers, False)


def test_in_order_streams_from_two_publishers_count_no_loss(sock):
    sub = subscriber(sock, 0)
    feed(sub, publishes(sub.layout, [(0, 0), (1, 0), (0, 1), (1, 1)]), 0)
    assert (sub.received, sub.gap_lost, sub.dups, sub.next_seq) == (4, 0, 0, [2, 2])


def test_a_gap_counts_as_lost_and_a_step_back_as_duplicate(sock):
    sub = subscriber(sock, 0)
    feed(sub, publishes(sub.layout, [(0, 0), (0, 3), (0, 2)]), 0)
    assert (sub.gaps, sub.gap_lost, sub.dups, sub.progress) == (1, 2, 1, 4)


def test_a_packet_split_across_reads_is_kept_for_the_next_read(sock):
    sub = subscriber(sock, 0)
    data = publishes(sub.layout, [(0, 0), (0, 1)])
    feed(sub, data[:100], 0)
    assert sub.received == 1
    feed(sub, data[100:], 0)
    assert (sub.received, sub.end) == (2, 0)


def test_qos1_records_are_acknowledged_with_their_packet_ids(sock):
    sub = subscriber(sock, 1)
    feed(sub, publishes(sub.layout, [(0, 0), (0, 1), (1, 0)], pid_start=7), 0)
    assert bytes(sub.out) == wire.puback(7) + wire.puback(8) + wire.puback(9)


def test_redelivery_with_dup_flag_and_pingresp_take_the_slow_path(sock):
    sub = subscriber(sock, 1)
    data = (publishes(sub.layout, [(0, 0)], pid_start=5) + b"\xd0\x00"
            + publishes(sub.layout, [(0, 0)], pid_start=5, dup=True) + publishes(sub.layout, [(0, 1)], pid_start=6))
    feed(sub, data, 0)
    assert (sub.received, sub.dups, sub.next_seq[0]) == (3, 1, 2)
    assert bytes(sub.out) == wire.puback(5) + wire.puback(5) + wire.puback(6)


def test_an_unexpected_packet_type_is_an_error_not_a_miscount(sock):
    sub = subscriber(sock, 0)
    with pytest.raises(ProtocolFailure):
        feed(sub, b"\x20\x02\x00\x00", 0)


def test_publisher_counts_pubacks_and_builds_numbered_batches(sock):
    pub = Publisher(sock, 3, wire.PublishLayout("bench/00001/p/003", 1, 64), 4)
    pub.publish(4, 123)
    size = pub.layout.size
    stamps = [wire.STAMP_WITH_PID.unpack_from(pub.out, i * size + pub.layout.pid_offset) for i in range(4)]
    assert stamps == [(1, 3, 0, 123), (2, 3, 1, 123), (3, 3, 2, 123), (4, 3, 3, 123)]
    feed(pub, wire.puback(1) + wire.puback(2) + wire.puback(3)[:3], 0)
    assert pub.acked == 2
    feed(pub, wire.puback(3)[3:], 0)
    assert pub.acked == 3
