"""Which events are POSTed: rules in order, MQTT filter semantics, start-up warnings."""

import json

from appliance.config.model import WebhookConfig, WebhookRule
from appliance.webhook import check_rules
from appliance.webhook.rules import Rules


def rules(*pairs):
    return tuple(WebhookRule(event, topic, index=i) for i, (event, topic) in enumerate(pairs))


def test_publish_rules_use_mqtt_filter_semantics():
    r = Rules(rules(("on_message_publish", "a/+/c"), ("on_message_publish", "foo/#")))
    assert r.publish("a/b/c") and r.publish("foo") and r.publish("foo/x/y")
    assert not r.publish("a/b/c/d") and not r.publish("a/c") and not r.publish("food")


def test_wildcard_rules_do_not_leak_sys_topics_but_named_sys_rules_match():
    assert not Rules(rules(("on_message_publish", "#"))).publish("$SYS/broker/uptime")
    assert not Rules(rules(("on_message_publish", "+/broker/uptime"))).publish("$SYS/broker/uptime")
    assert Rules(rules(("on_message_publish", "$SYS/#"))).publish("$SYS/broker/uptime")


def test_a_publish_rule_without_topic_matches_every_topic_except_none_for_other_events():
    r = Rules(rules(("on_message_publish", None)))
    assert r.publish("anything/at/all") and r.publish("$SYS/x")
    assert not r.connack and not r.disconnected


def test_event_names_are_case_insensitive():
    r = Rules(rules(("On_Client_Connack", None), ("ON_MESSAGE_PUBLISH", "a")))
    assert r.connack and r.publish("a") and not r.disconnected


def test_check_rules_warns_about_unknown_events_and_ignored_topics_naming_the_rule():
    config = WebhookConfig(url="http://127.0.0.1:1", rules=rules(
        ("on_message_publish", "a"), ("on_session_created", None), ("on_message_delivered", "x"),
        ("on_client_connack", "ignored/topic"), ("on_client_subscribe", None)))
    warnings = check_rules(config)
    assert any("webhook.events[1]" in w and "unknown event 'on_session_created'" in w for w in warnings)
    assert any("webhook.events[3]" in w and "ignored" in w for w in warnings)
    # EMQX's events NanoMQ never fires are fired here: no "never fired" warning for them.
    assert not any(f"webhook.events[{i}]" in w for i in (0, 2, 4) for w in warnings)
    assert not any("never" in w for w in warnings)


def test_topic_filters_apply_to_emqx_events_with_topics_and_wants_names_only_ruled_events():
    r = Rules(rules(("on_message_delivered", "a/#"), ("on_session_subscribed", "s/+"),
                    ("on_client_connect", None), ("on_message_acked", None)))
    assert r.matches("on_message_delivered", "a/b") and not r.matches("on_message_delivered", "b")
    assert r.matches("on_session_subscribed", "s/+") and not r.matches("on_session_subscribed", "s/x/y")
    assert r.matches("on_message_acked", "anything")
    assert not r.matches("on_message_dropped", "a/b") and not r.publish("a/b")
    assert {e for e in ("on_client_connect", "on_message_delivered", "on_message_acked", "on_message_dropped",
                        "on_client_connected", "on_session_terminated") if r.wants(e)} == {
        "on_client_connect", "on_message_delivered", "on_message_acked"}


def test_check_rules_is_quiet_for_a_sound_configuration():
    config = WebhookConfig(url="http://127.0.0.1:1", rules=rules(("on_message_publish", "a/#"),
                                                                 ("on_client_connack", None)))
    assert check_rules(config) == []


def test_only_matching_events_reach_the_receiver_once_each(receiver, start_stage):
    stage = start_stage(receiver.url, [
        {"event": "on_message_publish", "topic": "a/b/c"},
        {"event": "on_message_publish", "topic": "a/#"},  # overlaps: still one POST
        {"event": "on_message_publish", "topic": "$SYS/brokers/+/clients"},
        {"event": "on_session_created"},  # EMQX's, not NanoMQ's: never fired
    ])
    for topic in ["a/b/c", "x/y", "$SYS/broker/load", "$SYS/brokers/n1/clients", "a", "#no"]:
        stage.publish(None, {"topic": topic, "payload": topic, "publisher_id": "p"})
    stage.connack({"client_id": "not-posted"})
    stage.publish(None, {"topic": "a/last", "payload": "end", "publisher_id": "p"})
    receiver.wait_delivered(4)
    topics = [json.loads(r.body)["topic"] for r in receiver.delivered()]
    assert topics == ["a/b/c", "$SYS/brokers/n1/clients", "a", "a/last"]
    assert "webhook.events[3]" in stage.logs()  # the unknown event was a start-up warning
