"""NanoMQ's ACL (`auth.acl = {include "nanomq_acl.conf"}`): rules matched top to bottom,
the first rule that matches the client, the action and the topic decides.

Topics in rules are filters and may hold `${username}` and `${clientid}`. A value that
contains `+`, `#` or `/` is never substituted (the rule does not match), so a client
cannot widen a rule by choosing its own name.

For SUBSCRIBE, a rule decides only a filter it covers whole, allow and deny alike, as
mosquitto does: `deny secret/#` refuses `secret/#` and `secret/+/x`, but grants `#` and
`+/+` (monitoring clients subscribe to `#`). What such a wildcard subscription may then
receive is checked per message: the topic of each message, taken as a filter of its own,
is asked the same question (`ClientAcl.may_receive`), so nothing denied is ever delivered.
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
    return covers(rule_topic, topic)


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


def _dollar_mismatch(a: str, b: str) -> bool:
    # A filter starting with a wildcard matches no `$` topic (MQTT 4.7.2).
    return (a[:1] in ("+", "#") and b.startswith("$")) or (b[:1] in ("+", "#") and a.startswith("$"))
