"""Reader for the `webhook { ... }` block, per shared/spec/webhook.md.

Also loads NanoMQ's pre-0.18 rule form (`webhook.rule.<client|session|message>.<name>
= [{action, topic}]`) with a deprecation warning, and explains the invalid form printed
in NanoMQ's own documentation (shared options written inside the `events` array).
"""

from __future__ import annotations

import os

from pyhocon import ConfigTree

from .keys import key_of
from .model import WebhookConfig, WebhookRule, WebhookTls, header_problem
from .reader import MISSING, Section, clean_key, format_path, read_block
from .topics import topic_filter_problem
from .units import describe

# NanoMQ's three events, then EMQX's that NanoMQ accepts but never fires (we fire them,
# opt-in: only a rule naming one makes the broker produce it), and EMQX's message.dropped.
FIRED_EVENTS = (
    "on_client_connack", "on_client_disconnected", "on_message_publish",
    "on_client_connect", "on_client_connected", "on_client_subscribe", "on_client_unsubscribe",
    "on_session_subscribed", "on_session_unsubscribed", "on_session_terminated",
    "on_message_delivered", "on_message_acked", "on_message_dropped",
)
# Accepted for compatibility but never fired: a warning, never silence. (None left.)
UNFIRED_EVENTS: tuple[str, ...] = ()
# Events that carry a topic (a subscription's filter, or the message's topic): a rule's
# `topic` filter applies to these, as in EMQX.
TOPIC_EVENTS = (
    "on_message_publish", "on_client_subscribe", "on_client_unsubscribe", "on_session_subscribed",
    "on_session_unsubscribed", "on_message_delivered", "on_message_acked", "on_message_dropped",
)
SHARED_OPTIONS = ("url", "headers", "body", "pool_size", "cancel_timeout", "enable", "ssl", "tls")

RIGHT_FORM = (
    'webhook { url = "http://127.0.0.1:80", headers.content-type = "application/json", '
    "body.encoding = plain, pool_size = 32, "
    'events = [ { event = "on_message_publish", topic = "a/b/c" }, { event = "on_client_connack" } ] }'
)
DOC_FORM_PROBLEM = (
    "the shared options (url, headers, body.encoding, pool_size) are written inside the events "
    "array, as NanoMQ's documentation shows; that is not valid. Put them beside events: " + RIGHT_FORM
)


def read_webhook(root: Section) -> WebhookConfig | None:
    """The webhook block as a WebhookConfig; None if absent or `enable = false`."""
    hook = root.child("webhook")
    if hook is None:
        return None
    if not hook.get("enable", True, key_of(WebhookConfig, "enable").parse):
        hook.seen.update(hook.keys())  # a disabled block is not validated
        return None
    rules = _read_events(hook) + _read_legacy_rules(hook)
    if not hook.has("url"):
        raise hook.fail(None, 'url is required, e.g. url = "http://127.0.0.1:8080/hook"')
    url = hook.get("url", None, key_of(WebhookConfig, "url").parse)
    config = read_block(hook, WebhookConfig, rules=rules, headers=_read_headers(hook), tls=_read_tls(hook, url))
    queue = hook.child("queue")
    if queue is not None and queue.has("sync") and not config.queue.spool_dir:
        hook.ctx.warn(queue.at("sync"), f"{format_path(queue.at('sync'))} has no effect without spool_dir (ignored)")
    hook.finish()
    return config


def _read_headers(hook: Section) -> tuple[tuple[str, str], ...]:
    headers = hook.child("headers")
    if headers is None:
        return ()
    found: list[tuple[str, str]] = []
    _flatten_headers(headers, headers.values, (), found)
    headers.seen.update(headers.keys())
    return tuple(found)


def _flatten_headers(section: Section, values: dict, prefix: tuple, found: list) -> None:
    # headers.x.y = 1 makes a nested object in HOCON; the header name is "x.y".
    for key, value in values.items():
        name_parts = prefix + (clean_key(key),)
        if isinstance(value, ConfigTree):
            nested = {clean_key(k): v for k, v in value.items()}
            _flatten_headers(section, nested, name_parts, found)
            continue
        name = ".".join(name_parts)
        path = section.path + name_parts
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise section.ctx.error(path, f"expected a string, got {describe(value)}")
        problem = header_problem(name, str(value))
        if problem:
            raise section.ctx.error(path, problem)
        found.append((name, str(value)))


def _read_events(hook: Section) -> tuple[WebhookRule, ...]:
    events = hook.raw("events")
    if events is MISSING:
        return ()
    path = hook.at("events")
    if not isinstance(events, list):
        raise hook.ctx.error(path, f"expected a list of {{ event, topic }} rules, got {describe(events)}")
    rules: list[WebhookRule] = []
    for index, item in enumerate(events):
        if not isinstance(item, ConfigTree):
            problem = f"expected a rule {{ event = ..., topic = ... }}, got {describe(item)}"
            raise hook.ctx.error(path + (index,), problem)
        if path + (index,) in hook.ctx.merged:
            raise hook.ctx.error(path + (index,), "rules written on one line without a comma, { ... } { ... }, "
                                 "are merged into one rule by HOCON; separate them with a comma or a new line")
        rule = Section(hook.ctx, item, path + (index,))
        misplaced = [key for key in rule.keys() if key in SHARED_OPTIONS]
        if misplaced:
            raise rule.fail(misplaced[0], DOC_FORM_PROBLEM)
        if not rule.has("event"):
            raise rule.fail(None, f"a rule needs event = {', '.join(FIRED_EVENTS)}")
        event = rule.string("event", None)
        topic = rule.string("topic", None)
        rule.finish()
        made = _make_rule(rule, event, topic, index)
        if made is not None:
            rules.append(made)
    return tuple(rules)


def _make_rule(rule: Section, event: str, topic: str | None, index: int) -> WebhookRule | None:
    event = event.strip().lower()
    where = format_path(rule.path)
    if event in UNFIRED_EVENTS:
        rule.ctx.warn(rule.path, f"{where}: event {event} is accepted by NanoMQ but never fired (rule ignored)")
        return None
    if event not in FIRED_EVENTS:
        raise rule.fail("event" if rule.has("event") else None,
                        f"unknown event {event!r}; expected one of {', '.join(FIRED_EVENTS)}")
    if topic is not None:
        if event not in TOPIC_EVENTS:
            rule.ctx.warn(rule.at("topic"), f"{where}: topic does not apply to {event} (ignored); it applies "
                                            f"to {', '.join(TOPIC_EVENTS)}")
            topic = None
        else:
            problem = topic_filter_problem(topic)
            if problem:
                raise rule.fail("topic", problem)
    return WebhookRule(event=event, topic=topic, index=index)




def _read_legacy_rules(hook: Section) -> tuple[WebhookRule, ...]:
    """NanoMQ 0.14-0.18: webhook.rule.<category>.<name> = [ { action, topic } ]."""
    legacy = hook.child("rule")
    if legacy is None:
        return ()
    hook.ctx.warn(
        legacy.path,
        "webhook.rule is NanoMQ's pre-0.18 form (deprecated); loaded, but write it as "
        'webhook.events = [ { event = "on_message_publish", topic = "a/#" } ]',
    )
    rules: list[WebhookRule] = []
    first_index = len(hook.values.get("events") or [])
    for category in legacy.keys():
        group = legacy.child(category)
        for name in group.keys():
            event = f"on_{category}_{name}".lower()
            value = group.raw(name)
            items = value if isinstance(value, list) else [value]
            for position, item in enumerate(items):
                path = group.at(name) + ((position,) if isinstance(value, list) else ())
                if not isinstance(item, ConfigTree):
                    raise hook.ctx.error(path, f"expected {{ action = ..., topic = ... }}, got {describe(item)}")
                rule = Section(hook.ctx, item, path)
                action = rule.string("action", None)
                topic = rule.string("topic", None)
                rule.finish()
                # NanoMQ took the event from the key path, not from action.
                if action is not None and action.strip().lower() != event:
                    hook.ctx.warn(path, f"{format_path(path)}: action {action!r} differs from the "
                                        f"key path; the path's event {event} is used")
                made = _make_rule(rule, event, topic, first_index + len(rules))
                if made is not None:
                    rules.append(made)
        group.finish()
    legacy.finish()
    return tuple(rules)


def _read_tls(hook: Section, url: str) -> WebhookTls:
    if hook.has("ssl") and hook.has("tls"):
        raise hook.fail("tls", "write either webhook.ssl or webhook.tls (an alias), not both")
    tls = hook.child("tls" if hook.has("tls") else "ssl")
    if tls is None:
        return WebhookTls()
    tls.not_implemented("enable")  # NanoMQ's pre-0.19 switch; presence enables it
    config = read_block(tls, WebhookTls)
    if not url.lower().startswith("https:"):
        hook.ctx.warn(tls.path, f"{format_path(tls.path)} is only used for https URLs (ignored)")
        return config
    for name in ("cacertfile", "certfile", "keyfile"):
        filename = getattr(config, name)
        if filename is not None and not os.path.isfile(filename):
            raise tls.fail(name, f"file not found: {filename}")
    return config
