"""NanoMQ's ACL (`auth.acl = {include "nanomq_acl.conf"}`): rules matched top to bottom,
the first rule that matches the client, the action and the topic decides.

Topics in rules are filters and may hold `${username}` and `${clientid}`. A value that
contains `+`, `#` or `/` is never substituted (the rule does not match), so a client
cannot widen a rule by choosing its own name. For SUBSCRIBE, an allow rule must cover the
whole requested filter, while a deny rule applies as soon as the two can match a common
topic: `deny a/b` refuses a subscription to `a/+`.
"""

from __future__ import annotations

from ..broker.hooks import ClientInfo
from ..broker.topics import matches
from ..config.model import AclRule

PUBLISH = "publish"
SUBSCRIBE = "subscribe"
_PLACEHOLDERS = ("${username}", "${clientid}")


def decide(rules: tuple[AclRule, ...], client: ClientInfo, action: str, topic: str) -> bool | None:
    """True (allow) or False (deny) from the first matching rule; None if no rule matches."""
    for rule in rules:
        if rule.action != "pubsub" and rule.action != action:
            continue
        if not _who_matches(rule, client):
            continue
        if rule.topics and not any(_topic_matches(rule, t, client, action, topic) for t in rule.topics):
            continue
        return rule.permit
    return None


def _who_matches(rule: AclRule, client: ClientInfo) -> bool:
    if not rule.conditions:
        return True
    results = (_condition(field, value, client) for field, value in rule.conditions)
    return any(results) if rule.combine == "or" else all(results)


def _condition(field: str, value: str | None, client: ClientInfo) -> bool:
    actual = {"username": client.username, "clientid": client.client_id, "ipaddr": client.peer[0]}[field]
    if value is None:  # "#": everyone, as NanoMQ means it (a client without a username included)
        return True
    return actual is not None and actual == value


def _topic_matches(rule: AclRule, rule_topic: str, client: ClientInfo, action: str, topic: str) -> bool:
    if "${" in rule_topic:
        rule_topic = _substitute(rule_topic, client)
        if rule_topic is None:
            return False
    if action == PUBLISH:
        return matches(rule_topic, topic)
    return overlaps(rule_topic, topic) if not rule.permit else covers(rule_topic, topic)


def _substitute(rule_topic: str, client: ClientInfo) -> str | None:
    for placeholder, value in zip(_PLACEHOLDERS, (client.username, client.client_id)):
        if placeholder in rule_topic:
            if not value or "+" in value or "#" in value or "/" in value:
                return None
            rule_topic = rule_topic.replace(placeholder, value)
    return rule_topic


def covers(rule_filter: str, requested: str) -> bool:
    """Every topic `requested` can match is matched by `rule_filter`."""
    if _dollar_mismatch(rule_filter, requested):
        return False
    rule_levels, levels = rule_filter.split("/"), requested.split("/")
    for i, level in enumerate(rule_levels):
        if level == "#":
            return True
        if i >= len(levels) or levels[i] == "#":
            return False
        if level != "+" and level != levels[i]:
            return False
    return len(rule_levels) == len(levels)


def overlaps(rule_filter: str, requested: str) -> bool:
    """Some topic is matched by both filters."""
    if _dollar_mismatch(rule_filter, requested):
        return False
    rule_levels, levels = rule_filter.split("/"), requested.split("/")
    for i in range(max(len(rule_levels), len(levels))):
        a = rule_levels[i] if i < len(rule_levels) else None
        b = levels[i] if i < len(levels) else None
        if a == "#" or b == "#":
            return True
        if a is None or b is None:
            return False
        if a != "+" and b != "+" and a != b:
            return False
    return True


def _dollar_mismatch(a: str, b: str) -> bool:
    # A filter starting with a wildcard matches no `$` topic (MQTT 4.7.2).
    return (a[:1] in ("+", "#") and b.startswith("$")) or (b[:1] in ("+", "#") and a.startswith("$"))
