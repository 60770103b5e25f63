"""Which events are POSTed: `webhook.events` rules, tried in order, first match wins."""

from __future__ import annotations

from appliance.broker.topics import matches
from appliance.config.model import WebhookConfig, WebhookRule
from appliance.config.webhook import FIRED_EVENTS, TOPIC_EVENTS, UNFIRED_EVENTS

(ON_CLIENT_CONNACK, ON_CLIENT_DISCONNECTED, ON_MESSAGE_PUBLISH, ON_CLIENT_CONNECT, ON_CLIENT_CONNECTED,
 ON_CLIENT_SUBSCRIBE, ON_CLIENT_UNSUBSCRIBE, ON_SESSION_SUBSCRIBED, ON_SESSION_UNSUBSCRIBED, ON_SESSION_TERMINATED,
 ON_MESSAGE_DELIVERED, ON_MESSAGE_ACKED, ON_MESSAGE_DROPPED) = FIRED_EVENTS

_TOPIC_CACHE_MAX = 4096  # distinct topics remembered per event; IoT topics repeat a lot


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
        elif rule.topic is not None and event not in TOPIC_EVENTS:
            warnings.append(f"{where}: topic {rule.topic!r} is ignored for {event} (topics apply to "
                            f"{', '.join(TOPIC_EVENTS)})")
    if not any(rule.event.lower() in FIRED_EVENTS for rule in config.rules):
        warnings.append("webhook: no rule names an event this broker fires; nothing will be POSTed")
    return warnings


class Rules:
    """The rules of one configuration, answering "is this event POSTed?" cheaply."""

    def __init__(self, rules: tuple[WebhookRule, ...]) -> None:
        events = [rule.event.lower() for rule in rules]
        self._named = frozenset(event for event in events if event in FIRED_EVENTS)
        self.connack = ON_CLIENT_CONNACK in self._named
        self.disconnected = ON_CLIENT_DISCONNECTED in self._named
        # Per topic event, its filters in rule order; None stands for "every topic", and
        # everything after it could never be reached.
        filters: dict[str, list] = {}
        for rule, event in zip(rules, events):
            if event in TOPIC_EVENTS:
                kept = filters.setdefault(event, [])
                if None not in kept:
                    kept.append(rule.topic)
        self._filters = {event: tuple(kept) for event, kept in filters.items()}
        self._publish_filters = self._filters.get(ON_MESSAGE_PUBLISH, ())
        self._caches: dict[str, dict[str, bool]] = {event: {} for event in self._filters}
        self._cache = self._caches.get(ON_MESSAGE_PUBLISH, {})

    def wants(self, event: str) -> bool:
        """Whether some rule names `event` (so the broker should produce it at all)."""
        return event in self._named

    def publish(self, topic: str) -> bool:
        """Whether a message on `topic` is POSTed (MQTT filter semantics: `+`/`#` filters do
        not match `$SYS/...`, unlike NanoMQ)."""
        hit = self._cache.get(topic)
        if hit is None:
            hit = self._match(self._publish_filters, self._cache, topic)
        return hit

    def matches(self, event: str, topic: str) -> bool:
        """Whether `event` about `topic` (a message's topic, or a subscription's filter) is
        POSTed; an event no rule names never is."""
        cache = self._caches.get(event)
        if cache is None:
            return False
        hit = cache.get(topic)
        if hit is None:
            hit = self._match(self._filters[event], cache, topic)
        return hit

    @staticmethod
    def _match(filters: tuple, cache: dict, topic: str) -> bool:
        hit = any(f is None or matches(f, topic) for f in filters)
        if len(cache) >= _TOPIC_CACHE_MAX:
            cache.clear()
        cache[topic] = hit
        return hit
