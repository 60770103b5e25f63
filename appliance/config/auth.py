"""Readers for NanoMQ's `auth { ... }` block: anonymous access, the password file, the ACL
file (both usually `{include "file"}`, relative to nanomq.conf) and `http_auth`."""

from __future__ import annotations

from pyhocon import ConfigTree

from ..auth.passwords import parse_hashed
from .keys import Bool, Key
from .model import AclRule, AuthConfig, HttpAuthConfig, HttpAuthRequest
from .reader import MISSING, Section, read_block
from .units import describe

ACTIONS = ("publish", "subscribe", "pubsub")
WHO = ("username", "clientid", "ipaddr")


def read_auth(root: Section) -> AuthConfig | None:
    """The `auth` block; None when absent (no authentication, no ACL)."""
    auth = root.child("auth")
    if auth is None:
        return None
    config = read_block(auth, AuthConfig, passwords=_passwords(auth), acl=_acl(auth), http=_http_auth(auth))
    auth.finish()
    return config


def _passwords(auth: Section) -> tuple[tuple[str, str], ...] | None:
    # NanoMQ's key is `password`; EMQX Edge also documents `auth.passwd { user: pass }`.
    found = None
    for key in ("password", "passwd"):
        section = auth.child(key)
        if section is None:
            continue
        entries = list(found or ())
        for username in section.keys():
            value = section.raw(username)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int):
                value = str(value)
            if not isinstance(value, str):
                # Never show the value: it is a secret.
                raise section.fail(username, f"expected a password string (quote it), got {_kind(value)}")
            try:
                parse_hashed(value)
            except ValueError as exc:
                raise section.fail(username, f"bad hashed password: {exc}") from None
            entries.append((username, value))
        found = tuple(entries)
    return found


def _kind(value: object) -> str:
    return "an object" if isinstance(value, ConfigTree) else "a list" if isinstance(value, list) else "a number"


def _acl(auth: Section) -> tuple[AclRule, ...]:
    acl = auth.child("acl")
    if acl is None:
        return ()
    rules = acl.raw("rules")
    acl.finish()
    if rules is MISSING:
        return ()
    if not isinstance(rules, list):
        raise acl.fail("rules", f"expected a list of rules [ {{permit = allow, ...}} ], got {describe(rules)}")
    found = []
    for index, item in enumerate(rules):
        if not isinstance(item, ConfigTree):
            raise acl.fail("rules", f"rules[{index}]: expected an object {{permit = ...}}, got {describe(item)}")
        rule = Section(acl.ctx, item, acl.at("rules") + (index,))
        found.append(_rule(rule, index))
    return tuple(found)


def _rule(rule: Section, index: int) -> AclRule:
    if not rule.has("permit"):
        raise rule.fail(None, "a rule needs permit = allow or deny")
    permit = rule.choice("permit", "allow", ("allow", "deny")) == "allow"
    action = rule.choice("action", "pubsub", ACTIONS)
    topics = rule.raw("topics")
    if topics is MISSING:
        topics = []
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise rule.fail("topics", f"expected a list of topic filters, got {describe(topics)}")
    conditions = [_condition(rule, key, rule.raw(key)) for key in WHO if rule.has(key)]
    combine = "and"
    for key in ("and", "or"):
        if rule.has(key):
            if conditions:
                raise rule.fail(key, f"use {key} alone, not together with username, clientid or ipaddr")
            items = rule.raw(key)
            if not isinstance(items, list) or not items:
                raise rule.fail(key, f"expected a list such as [{{username = a}}, {{clientid = b}}], got {describe(items)}")
            for position, item in enumerate(items):
                if not isinstance(item, ConfigTree) or len(item) != 1 or next(iter(item)) not in WHO:
                    raise rule.fail(key, f"{key}[{position}]: expected one of {{username|clientid|ipaddr = value}}")
                field = next(iter(item))
                conditions.append(_condition(rule, key, item[field], field))
            combine = key
    rule.finish()
    return AclRule(permit, action, tuple(topics), tuple(conditions), combine, index)


def _condition(rule: Section, key: str, value: object, field: str | None = None) -> tuple[str, str | None]:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise rule.fail(key, f"expected a string, got {describe(value)}")
    value = str(value)
    return (field or key, None if value == "#" else value)


HTTP_AUTH_ENABLE = Key("auth.http_auth.enable", Bool(), True, "false turns http_auth off (its keys unchecked).")


def _http_auth(auth: Section) -> HttpAuthConfig | None:
    http = auth.child("http_auth")
    if http is None:
        return None
    if not http.get("enable", True, HTTP_AUTH_ENABLE.parse):
        http.seen.update(http.keys())
        return None
    config = read_block(http, HttpAuthConfig, auth_req=_request(http, "auth_req"),
                        super_req=_request(http, "super_req"), acl_req=_request(http, "acl_req"))
    if config.auth_req is None and config.acl_req is None:
        http.ctx.warn(http.path, "auth.http_auth has neither auth_req nor acl_req (ignored)")
        return None
    return config


def _request(http: Section, key: str) -> HttpAuthRequest | None:
    section = http.child(key)
    if section is None:
        return None
    if not section.has("url"):
        raise section.fail("url", "expected an http:// or https:// URL, got nothing")
    return read_block(section, HttpAuthRequest, headers=_string_map(section, "headers"),
                      params=_string_map(section, "params"))


def _string_map(section: Section, key: str) -> tuple[tuple[str, str], ...]:
    child = section.child(key)
    if child is None:
        return ()
    pairs = []
    for name in child.keys():
        value = child.raw(name)
        if isinstance(value, ConfigTree):  # pyhocon splits dotted names: content-type is one
            raise child.fail(name, f"expected a string, got {describe(value)}")
        pairs.append((name, str(value)))
    return tuple(pairs)
