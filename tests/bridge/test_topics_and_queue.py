"""The remapping rules, the send queue and the backoff, in memory (no sockets: pure functions
and one small data structure)."""

from __future__ import annotations

import random

import pytest

from appliance.bridge.link import backoff_delay
from appliance.bridge.queue import MemorySendQueue, Outgoing
from appliance.bridge.topics import remap_problem, remapper


@pytest.mark.parametrize("source, target, prefix, suffix, topic, expected", [
    # "" keeps the topic (NanoMQ: leave it empty to preserve the original topic)
    ("a/#", "", "", "", "a/b/c", "a/b/c"),
    # ${topic} is EMQX's spelling of the same, also inside a template
    ("a/#", "${topic}", "", "", "a/b", "a/b"),
    ("a/#", "site1/${topic}", "", "", "a/b", "site1/a/b"),
    # a fixed target replaces the topic (NanoMQ's topic reflection)
    ("topic1", "fwd/topic1", "", "", "topic1", "fwd/topic1"),
    ("sensors/#", "all/sensors", "", "", "sensors/x/y", "all/sensors"),
    # wildcards are anchors (NanoMQ 0.23.7): the documented example
    ("+/nanomq/#", "#", "", "", "cmd/nanomq/hello/world", "hello/world"),
    ("+/nanomq/#", "site/+/#", "", "", "cmd/nanomq/hello/world", "site/cmd/hello/world"),
    ("+/+/temp", "t/+/+", "", "", "b1/r2/temp", "t/b1/r2"),
    ("a/#", "x/#", "", "", "a", "x"),  # '#' matched nothing: it drops out with its '/'
    # prefix and suffix are plain strings, as in NanoMQ (write the '/')
    ("raw/#", "", "edge/", "/v1", "raw/a", "edge/raw/a/v1"),
    ("+/nano/#", "#", "cmd/", "/remote", "system/nano/start", "cmd/start/remote"),
    # no match
    ("a/+", "", "", "", "a/b/c", None),
    ("#", "", "", "", "$SYS/x", None),
    # a rule that leaves nothing is "" (refused and counted at run time)
    ("a/#", "#", "", "", "a", ""),
])
def test_remapping(source, target, prefix, suffix, topic, expected):
    assert remap_problem(source, target, prefix, suffix) is None
    assert remapper(source, target, prefix, suffix)(topic) == expected


@pytest.mark.parametrize("source, target, prefix, problem", [
    ("a/b", "x/#", "", "has no '#'"),
    ("a/+", "x/+/+", "", "more '+'"),
    ("a/#", "x/#/y", "", "whole last level"),
    ("a/#", "x/a+", "", "whole level"),
    ("a/#", "${topic}/+", "", "mixes"),
    ("a/#", "", "p/+/", "cannot contain wildcards"),
])
def test_impossible_rules_are_refused(source, target, prefix, problem):
    assert problem in remap_problem(source, target, prefix, "")


def entry(n: int, qos: int = 1) -> Outgoing:
    return Outgoing("t", str(n).encode(), qos, False)


def test_queue_hands_out_in_order_and_replays_unacknowledged_in_order_after_rewind():
    queue = MemorySendQueue(100)
    for n in range(5):
        queue.append(entry(n))
    sent = [queue.next_unsent() for _ in range(3)]
    assert [e.payload for e in sent] == [b"0", b"1", b"2"]
    queue.acknowledged(sent[1].seq)
    queue.rewind()
    assert [queue.next_unsent().payload for _ in range(4)] == [b"0", b"2", b"3", b"4"]
    assert queue.next_unsent() is None
    assert len(queue) == 4


def test_queue_drops_oldest_first_when_full():
    queue = MemorySendQueue(3)
    dropped = [queue.append(entry(n)) for n in range(5)]
    assert [d.payload if d else None for d in dropped] == [None, None, None, b"0", b"1"]
    assert [queue.next_unsent().payload for _ in range(3)] == [b"2", b"3", b"4"]
    assert len(queue) == 3


def test_a_dropped_inflight_entry_is_skipped_and_its_late_ack_ignored():
    queue = MemorySendQueue(2)
    first = queue.append(entry(0)) or queue.next_unsent()
    queue.append(entry(1))
    assert queue.append(entry(2)).payload == b"0"  # the inflight one was the oldest
    assert queue.acknowledged(first.seq) is None
    assert [queue.next_unsent().payload for _ in range(2)] == [b"1", b"2"]


def test_backoff_is_capped_exponential_with_jitter():
    rand = random.Random(7)
    delays = [[backoff_delay(attempt, 0.5, 8.0, rand) for _ in range(200)] for attempt in range(8)]
    for attempt, sample in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2 ** attempt)
        assert all(0.5 <= d <= ceiling for d in sample)
        if ceiling > 0.5:
            assert max(sample) - min(sample) > (ceiling - 0.5) / 2  # spread: jitter, not a fixed step
    assert max(delays[7]) <= 8.0
