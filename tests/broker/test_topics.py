import pytest

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
