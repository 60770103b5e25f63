"""Reader for the `webhook { ... }` block, per shared/spec/webhook.md.

Also loads NanoMQ's pre-0.18 rule form (`webhook.rule.<client|session|message>.<name>
= [{action, topic}]`) with a deprecation warning, and explains the invalid form printed
in NanoMQ's own documentation (shared options written inside the `events` array).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from pyhocon import ConfigTree

from .model import WebhookConfig, WebhookQueue, WebhookRetry, WebhookRule, WebhookTls
from .reader import MISSING, Section, clean_key, format_path
from .units import describe

FIRED_EVENTS = ("on_client_connack", "on_client_disconnected", "on_message_publish")
# Accepted by NanoMQ but never fired by it (nor by us): a warning, never silence.
UNFIRED_EVENTS = (
    "on_client_connect", "on_client_connected", "on_client_subscribe", "on_client_unsubscribe",
    "on_session_subscribed", "on_session_unsubscribed", "on_session_terminated",
    "on_message_delivered", "on_message_acked",
)
ENCODINGS = ("plain", "base64", "base62")
ORDER_SCOPES = ("client", "topic", "none")
SYNC_MODES = ("fsync", "os")
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

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def read_webhook(root: Section) -> WebhookConfig | None:
    """The webhook block as a WebhookConfig; None if absent or `enable = false`."""
    hook = root.child("webhook")
    if hook is None:
        return None
    if not hook.boolean("enable", True):
        hook.seen.update(hook.keys())  # a disabled block is not validated
        return None
    rules = _read_events(hook) + _read_legacy_rules(hook)
    url = _read_url(hook)
    encoding = _default("encoding")
    body = hook.child("body")
    if body is not None:
        encoding = body.choice("encoding", encoding, ENCODINGS)
        body.finish()
    config = WebhookConfig(
        url=url,
        rules=rules,
        headers=_read_headers(hook),
        encoding=encoding,
        pool_size=hook.integer("pool_size", _default("pool_size"), 1),
        # NanoMQ writes this one in milliseconds; the model holds seconds.
        cancel_timeout=hook.duration("cancel_timeout", _default("cancel_timeout"), 0.001, "milliseconds"),
        enable=True,
        tls=_read_tls(hook, url),
        retry=_read_retry(hook, WebhookRetry()),
        queue=_read_queue(hook, WebhookQueue()),
        drain_timeout=hook.duration("drain_timeout", _default("drain_timeout"), positive=False),
        order=hook.choice("order", _default("order"), ORDER_SCOPES),
    )
    hook.finish()
    return config


def _default(name: str):
    return WebhookConfig.__dataclass_fields__[name].default


def _read_url(hook: Section) -> str:
    url = hook.raw("url")
    if url is MISSING:
        raise hook.fail(None, 'url is required, e.g. url = "http://127.0.0.1:8080/hook"')
    if not isinstance(url, str):
        raise hook.fail("url", f"expected an http or https URL, got {describe(url)}")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise hook.fail("url", f"bad port in {url!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise hook.fail("url", f'expected an http:// or https:// URL with a host, got {url!r}')
    return url


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
        if not _HEADER_NAME.match(name):
            raise section.ctx.error(path, f"{name!r} is not a valid HTTP header name")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise section.ctx.error(path, f"expected a string, got {describe(value)}")
        text = str(value)
        if "\r" in text or "\n" in text:
            raise section.ctx.error(path, "a header value cannot contain a line break")
        found.append((name, text))


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
        if event != "on_message_publish":
            rule.ctx.warn(rule.at("topic"), f"{where}: topic applies to on_message_publish only (ignored)")
            topic = None
        else:
            problem = topic_filter_problem(topic)
            if problem:
                raise rule.fail("topic", problem)
    return WebhookRule(event=event, topic=topic, index=index)


def topic_filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT topic filter, or None."""
    if not topic:
        return "a topic filter cannot be empty"
    levels = topic.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return f"'#' must be a whole last level, got {topic!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, got {topic!r}"
    if "\x00" in topic:
        return "a topic filter cannot contain NUL"
    return None


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
    key = "tls" if hook.has("tls") else "ssl"
    tls = hook.child(key)
    if tls is None:
        return WebhookTls()
    config = WebhookTls(
        cacertfile=tls.string("cacertfile", None),
        certfile=tls.string("certfile", None),
        keyfile=tls.string("keyfile", None),
        key_password=tls.string("key_password", None),
        verify_peer=tls.boolean("verify_peer", True),
    )
    tls.not_implemented("enable")  # NanoMQ's pre-0.19 switch; presence enables it
    tls.finish()
    if not url.lower().startswith("https:"):
        hook.ctx.warn(tls.path, f"{format_path(tls.path)} is only used for https URLs (ignored)")
        return config
    if config.keyfile and not config.certfile:
        raise tls.fail("keyfile", "a client key needs certfile too")
    for name in ("cacertfile", "certfile", "keyfile"):
        filename = getattr(config, name)
        if filename is not None and not os.path.isfile(filename):
            raise tls.fail(name, f"file not found: {filename}")
    return config


def _read_retry(hook: Section, defaults: WebhookRetry) -> WebhookRetry:
    retry = hook.child("retry")
    if retry is None:
        return defaults
    config = WebhookRetry(
        max_attempts=retry.integer("max_attempts", defaults.max_attempts, 1),
        backoff_min=retry.duration("backoff_min", defaults.backoff_min),
        backoff_max=retry.duration("backoff_max", defaults.backoff_max),
    )
    if config.backoff_max < config.backoff_min:
        raise retry.fail("backoff_max", f"must be at least backoff_min ({config.backoff_min:g}s)")
    retry.finish()
    return config


def _read_queue(hook: Section, defaults: WebhookQueue) -> WebhookQueue:
    queue = hook.child("queue")
    if queue is None:
        return defaults
    config = WebhookQueue(
        max_len=queue.integer("max_len", defaults.max_len, 1),
        spool_dir=queue.string("spool_dir", defaults.spool_dir) or None,
        sync=queue.choice("sync", defaults.sync, SYNC_MODES),
    )
    if queue.has("sync") and not config.spool_dir:
        queue.ctx.warn(queue.at("sync"), f"{format_path(queue.at('sync'))} has no effect without spool_dir (ignored)")
    queue.finish()
    return config
