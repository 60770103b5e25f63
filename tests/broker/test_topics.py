import random
import time

import pytest

from appliance.broker.message import Message
from appliance.broker.retained import PAUSE_EVERY, RetainedStore
from appliance.broker.topics import (
    TopicTree, matches, parse_shared, valid_topic_filter, valid_topic_name,
)


@pytest.mark.parametrize("topic_filter, topic, expected", [
    ("a/b/c", "a/b/c", True),
    ("a/b/c", "a/b", False),
    ("a/+/c", "a/x/c", True),
    ("a/+/c", "a/x/y/c", False),
    ("a/#", "a", True),
    ("a/#", "a/b/c", True),
    ("#", "a/b", True),
    ("+", "a", True),
    ("+", "a/b", False),
    ("+/+", "/x", True),
    ("#", "$SYS/broker", False),
    ("+/broker", "$SYS/broker", False),
    ("$SYS/#", "$SYS/broker", True),
    ("a/b", "a/b/", False),
])
def test_filter_semantics_follow_mqtt_section_4_7(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected
    tree = TopicTree()
    tree.add(topic_filter, "c1", "opts")
    assert (tree.match(topic)[0] == [("c1", "opts")]) is expected


@pytest.mark.parametrize("topic_filter", ["a/#/b", "a#", "a/b+", "", "#/a"])
def test_invalid_filters_are_rejected(topic_filter):
    assert not valid_topic_filter(topic_filter)


def test_topic_names_may_not_hold_wildcards():
    assert valid_topic_name("a/b")
    assert not valid_topic_name("a/+")
    assert not valid_topic_name("a/#")
    assert not valid_topic_name("")


def test_shared_filters_split_into_group_and_filter():
    assert parse_shared("$share/g1/a/+") == ("g1", "a/+")
    assert parse_shared("a/b") == (None, "a/b")
    for bad in ("$share/g1", "$share//a", "$share/g+/a"):
        with pytest.raises(ValueError):
            parse_shared(bad)


def test_tree_match_sees_subscribe_and_unsubscribe_despite_the_cache():
    tree = TopicTree()
    tree.add("a/+", "c1", 1)
    assert tree.match("a/b") == ([("c1", 1)], [])
    tree.add("a/b", "c2", 2)
    assert sorted(tree.match("a/b")[0]) == [("c1", 1), ("c2", 2)]
    assert tree.remove("a/+", "c1")
    assert tree.match("a/b") == ([("c2", 2)], [])
    assert not tree.remove("a/+", "c1")
    assert tree.count == 1


def test_shared_groups_are_returned_once_per_group():
    tree = TopicTree()
    tree.add("a/#", "c1", 1, group="g")
    tree.add("a/#", "c2", 1, group="g")
    tree.add("a/#", "c3", 1, group="h")
    subscribers, groups = tree.match("a/x")
    assert subscribers == []
    assert sorted(sorted(g) for g in groups) == [["c1", "c2"], ["c3"]]


def test_removing_the_last_subscription_prunes_the_branch():
    tree = TopicTree()
    tree.add("a/b/c", "c1", 1)
    tree.remove("a/b/c", "c1")
    assert tree.topic_count() == 0
    assert tree._root.empty()


# -- deep topics: limits.max_topic_levels may be far above Python's recursion limit ------

def test_matching_a_topic_deeper_than_the_recursion_limit_works():
    deep = "/".join(["l"] * 5000)
    tree = TopicTree()
    tree.add(deep, "exact", 0)
    tree.add("/".join(["+"] * 4999 + ["#"]), "wild", 0)
    assert sorted(cid for cid, _ in tree.match(deep)[0]) == ["exact", "wild"]
    assert tree.topic_count() == 2


def test_topic_count_follows_subscribe_and_unsubscribe():
    tree = TopicTree()
    tree.add("a/b", "c1", 0)
    tree.add("a/b", "c2", 0)
    tree.add("a/#", "c1", 0, group="g")
    tree.add("a", "c1", 0)
    assert tree.topic_count() == 3
    tree.remove("a/b", "c1")
    assert tree.topic_count() == 3
    tree.remove("a/b", "c2")
    tree.remove("a/#", "c1", group="g")
    assert tree.topic_count() == 1
    tree.add("a", "c1", 1)  # a replacement is not a new filter
    assert tree.topic_count() == 1


# -- the retained store: a tree walked by the filter --------------------------------------

def _retained(topic, payload=b"x", expires_at=None):
    return Message(topic, payload, 0, True, "pub", None, 0, {}, expires_at)


def test_retained_lookup_agrees_with_matches_for_every_filter():
    rng = random.Random(7)
    levels = ["a", "b", "", "$s", "c"]
    store, kept = RetainedStore(), set()
    for _ in range(2000):
        topic = "/".join(rng.choice(levels) for _ in range(rng.randint(1, 5)))
        store.store(_retained(topic))
        kept.add(topic)
    for topic in sorted(kept)[::3]:
        store.store(_retained(topic, b""))  # an empty payload clears
        kept.discard(topic)
    assert len(store) == len(kept)
    filters = ["#", "+", "+/#", "a/#", "$s/#", "+/+/+", "a/+/b", "/#", "//", "+/b/+", "a", "$s/+"]
    filters += ["/".join(rng.choice(levels + ["+"]) for _ in range(rng.randint(1, 5))) + rng.choice(["", "/#"])
                for _ in range(500)]
    for topic_filter in filters:
        assert sorted(m.topic for m in store.matching(topic_filter)) == \
            sorted(t for t in kept if matches(topic_filter, t)), topic_filter


def test_a_filter_visits_only_the_branches_it_can_match():
    store = RetainedStore()
    for n in range(100_000):  # shapes a filter under zz/ must not scan
        store.store(_retained(f"r/{n}" if n % 2 else f"zz/{n}"))
    for a in range(50):
        for b in range(50):
            store.store(_retained(f"zz/x{a}/{b}"))
    before = store.visited
    found = [m.topic for i in range(300) for m in store.matching(f"zz/+/{i}")]
    assert sorted(found) == sorted(f"zz/x{a}/{b}" for a in range(50) for b in range(50))
    # Each filter: the root, zz, the 50 zz/x<a> branches and what it finds; never the
    # 100,000 leaves (scanning every topic for every filter is 30,000,000).
    assert store.visited - before <= 300 * (2 + 50) + len(found)


def test_a_wide_level_is_indexed_so_plus_then_a_name_goes_straight_to_the_matches():
    store = RetainedStore()
    for n in range(100_000):  # 100,000 branches under zz, all of which `zz/+/<i>` must pass
        store.store(_retained(f"zz/{n}/x" if n % 1000 else f"zz/{n}/{n // 1000}"))
    before = store.visited
    found = [m.topic for i in range(300) for m in store.matching(f"zz/+/{i}")]
    assert sorted(found) == sorted(f"zz/{n * 1000}/{n}" for n in range(100))
    # The first filter indexes zz's grandchildren once (100,000); then each filter costs
    # a handful of levels: not 300 x 100,000.
    assert store.visited - before <= 100_000 + 300 * 3 + len(found)
    store.store(_retained("zz/new/7"))  # the index follows changes
    store.store(_retained("zz/7000/7", b""))
    assert [m.topic for m in store.matching("zz/+/7")] == ["zz/new/7"]


def test_a_long_lookup_pauses_and_survives_changes_meanwhile():
    store = RetainedStore()
    for n in range(25_000):
        store.store(_retained(f"t/{n}"))
    pauses = []

    def pause():  # another client runs: it clears and stores retained messages
        pauses.append(1)
        store.store(_retained(f"t/new{len(pauses)}"))
        store.store(_retained(f"t/{len(pauses)}", b""))

    found = list(store.iter_matching("t/#", pause))
    assert len(pauses) >= 25_000 // PAUSE_EVERY
    assert len(found) >= 25_000 - len(pauses) and len(set(m.topic for m in found)) == len(found)


def test_expired_retained_messages_are_dropped_when_met():
    store = RetainedStore()
    store.store(_retained("a/old", expires_at=time.monotonic() - 1))
    store.store(_retained("a/new", expires_at=time.monotonic() + 60))
    store.store(_retained("a/forever"))
    assert sorted(m.topic for m in store.matching("a/+")) == ["a/forever", "a/new"]
    assert len(store) == 2
    assert store.matching("a/old") == []


def test_retained_lookup_of_a_deep_topic_works():
    store = RetainedStore()
    deep = "/".join(["l"] * 5000)
    store.store(_retained(deep))
    assert [m.topic for m in store.matching("/".join(["+"] * 4999 + ["#"]))] == [deep]
    assert [m.topic for m in store.matching("#")] == [deep]
    store.store(_retained(deep, b""))
    assert len(store) == 0 and not store._root.children


@pytest.mark.parametrize("change_meanwhile", [False, True])
def test_indexing_a_wide_level_pauses_and_stays_exact_if_the_store_changes_meanwhile(change_meanwhile):
    store = RetainedStore()
    for n in range(30_000):
        store.store(_retained(f"zz/{n}/{'x' if n % 1000 == 0 else 'y'}"))
    pauses = []

    def pause():  # another client runs while the index is built
        pauses.append(1)
        if change_meanwhile and len(pauses) == 1:
            store.store(_retained("zz/late/x"))
            store.store(_retained("zz/0/x", b""))

    found = sorted(m.topic for m in store.iter_matching("zz/+/x", pause))
    # The index of 30,000 grandchildren gave way (after a change it is made again at once).
    assert len(pauses) >= (1 if change_meanwhile else 30_000 // PAUSE_EVERY)
    expected = sorted(f"zz/{n}/x" for n in range(0, 30_000, 1000))
    if change_meanwhile:
        expected = sorted([t for t in expected if t != "zz/0/x"] + ["zz/late/x"])
    assert found == expected
    store.store(_retained("zz/later/x"))  # and the index follows later changes
    assert "zz/later/x" in [m.topic for m in store.matching("zz/+/x")]
