"""Which events are POSTed: `webhook.events` rules, tried in order, first match wins."""

from __future__ import annotations

from appliance.broker.topics import matches
from appliance.config.model import WebhookConfig, WebhookRule
from appliance.config.webhook import FIRED_EVENTS, UNFIRED_EVENTS

ON_CLIENT_CONNACK, ON_CLIENT_DISCONNECTED, ON_MESSAGE_PUBLISH = FIRED_EVENTS

_TOPIC_CACHE_MAX = 4096  # distinct topics remembered per stage; IoT topics repeat a lot


def check_rules(config: WebhookConfig) -> list[str]:
    """Start-up warnings about rules that can never do what they say, one per problem. (The
    config loader already warns about, and drops, such rules from a file; this also covers a
    configuration built otherwise, and a file whose rules were all dropped.)"""
    warnings = []
    for rule in config.rules:
        where = f"webhook.events[{rule.index}]"
        event = rule.event.lower()
        if event in UNFIRED_EVENTS:
            warnings.append(f"{where}: event {rule.event!r} is accepted for NanoMQ compatibility but never "
                            f"fired; this rule has no effect (fired events: {', '.join(FIRED_EVENTS)})")
        elif event not in FIRED_EVENTS:
            warnings.append(f"{where}: unknown event {rule.event!r}; this rule has no effect "
                            f"(fired events: {', '.join(FIRED_EVENTS)})")
        elif rule.topic is not None and event != ON_MESSAGE_PUBLISH:
            warnings.append(f"{where}: topic {rule.topic!r} is ignored for {event} (topics apply to "
                            f"on_message_publish only)")
    if not any(rule.event.lower() in FIRED_EVENTS for rule in config.rules):
        warnings.append("webhook: no rule names an event this broker fires; nothing will be POSTed")
    return warnings


class Rules:
    """The rules of one configuration, answering "is this event POSTed?" cheaply."""

    def __init__(self, rules: tuple[WebhookRule, ...]) -> None:
        events = [rule.event.lower() for rule in rules]
        self.connack = ON_CLIENT_CONNACK in events
        self.disconnected = ON_CLIENT_DISCONNECTED in events
        # None stands for "every topic"; everything after it could never be reached.
        filters = []
        for rule, event in zip(rules, events):
            if event == ON_MESSAGE_PUBLISH:
                filters.append(rule.topic)
                if rule.topic is None:
                    break
        self._filters = tuple(filters)
        self._cache: dict[str, bool] = {}

    def publish(self, topic: str) -> bool:
        """Whether a message on `topic` is POSTed (MQTT filter semantics: `+`/`#` filters do
        not match `$SYS/...`, unlike NanoMQ)."""
        hit = self._cache.get(topic)
        if hit is None:
            hit = any(f is None or matches(f, topic) for f in self._filters)
            if len(self._cache) >= _TOPIC_CACHE_MAX:
                self._cache.clear()
            self._cache[topic] = hit
        return hit
