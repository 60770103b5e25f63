"""SUBSCRIBE/UNSUBSCRIBE, wildcards, overlapping and shared subscriptions, retained messages (in-process)."""


def _pair(hub, version=4):
    return hub.peer("sub", version=version), hub.peer("pub", version=version)


def test_wildcards_match_and_dollar_topics_stay_out_of_them(hub):
    sub, pub = _pair(hub)
    sub.subscribe("+/temp", qos=1)
    sub.subscribe("site/#", qos=1)
    for topic in ("$SYS/temp", "room/temp", "site", "site/a/b", "other/x"):
        pub.publish(topic, topic, qos=1)
    received = sorted(m.topic for m in sub.messages())
    assert received == ["room/temp", "site", "site/a/b"]
    sub.expect_no_message()


def test_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos(hub):
    sub, pub = _pair(hub)
    sub.subscribe("o/+", qos=0)
    sub.subscribe("o/#", qos=1)
    pub.publish("o/x", b"one", qos=1)
    message = sub.expect_message()
    assert (message.payload, message.qos) == (b"one", 1)
    sub.expect_no_message()


def test_unsubscribe_stops_delivery(hub):
    sub, pub = _pair(hub)
    sub.subscribe("u/t", qos=1)
    sub.unsubscribe("u/t")
    pub.publish("u/t", b"x", qos=1)
    sub.expect_no_message()


def test_invalid_filter_is_refused_in_suback(hub):
    assert hub.peer("bad").subscribe("a/#/b", qos=1) == [0x80]
    assert hub.peer("bad5", version=5).subscribe("a/#/b", qos=1) == [0x8F]


def test_shared_subscription_gives_each_message_to_one_member(hub):
    members = []
    for name in ("m1", "m2"):
        member = hub.peer(name)
        member.subscribe("$share/workers/jobs/#", qos=1)
        members.append(member)
    pub = hub.peer("pub")
    for i in range(10):
        pub.publish(f"jobs/{i}", str(i), qos=1)
    counts = [len(member.messages()) for member in members]
    assert sum(counts) == 10
    assert all(count > 0 for count in counts)


def test_retained_message_is_stored_replaced_and_cleared(hub):
    pub = hub.peer("pub")
    pub.publish("ret/t", b"first", qos=1, retain=True)
    pub.publish("ret/t", b"second", qos=1, retain=True)
    late = hub.peer("late")
    late.subscribe("ret/#", qos=1)
    message = late.expect_message()
    assert (message.payload, message.retain) == (b"second", True)
    pub.publish("ret/t", b"", qos=1, retain=True)  # clears it
    later = hub.peer("later")
    later.subscribe("ret/#", qos=1)
    later.expect_no_message()


def test_live_delivery_of_a_retained_publish_has_retain_clear_in_v311(hub):
    sub, pub = _pair(hub)
    sub.subscribe("live/t", qos=1)
    pub.publish("live/t", b"x", qos=1, retain=True)
    assert sub.expect_message().retain is False


def test_v5_retain_handling_and_retain_as_published(hub):
    sub, pub = _pair(hub, 5)
    pub.publish("rh/t", b"stored", qos=1, retain=True)
    sub.subscribe("rh/t", qos=1, retain_handling=2)
    sub.expect_no_message()  # 2: never send retained messages
    sub.subscribe("rh/t", qos=1, retain_handling=1)
    sub.expect_no_message()  # 1: only for a new subscription, and this one existed
    sub.subscribe("rh/#", qos=1, retain_handling=1, retain_as_published=True)
    assert sub.expect_message().retain is True  # new subscription: retained copy
    pub.publish("rh/t", b"live", qos=1, retain=True)
    # rh/t (no RAP) and rh/# (RAP) overlap: one copy; RAP on one keeps the flag
    message = sub.expect_message()
    assert (message.payload, message.retain) == (b"live", True)
