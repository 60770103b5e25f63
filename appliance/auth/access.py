"""The broker's one question-answerer for security: may this client connect, and may it
publish to or subscribe to this topic. Sources are asked in order: the password file, then
`http_auth`; the ACL file, then `http_auth.acl_req`, then `no_match`."""

from __future__ import annotations

import logging
import time

from ..broker.hooks import ClientInfo
from ..config.model import AuthConfig
from ..mqtt import reason_codes as rc
from . import acl
from .http import UNAVAILABLE
from .passwords import PasswordTable

log = logging.getLogger(__name__)

PUBLISH, SUBSCRIBE = acl.PUBLISH, acl.SUBSCRIBE


class Verdict:
    """The outcome of authentication: the CONNACK reason code, and whether ACLs are skipped."""

    __slots__ = ("reason_code", "superuser", "why")

    def __init__(self, reason_code: int, why: str = "", superuser: bool = False) -> None:
        self.reason_code = reason_code
        self.superuser = superuser
        self.why = why


class AccessControl:
    """Built once from the `auth` block; `authenticate` at CONNECT, `client_acl` for the rest."""

    def __init__(self, config: AuthConfig, http=None) -> None:
        self.reconfigure(config, http)

    def reconfigure(self, config: AuthConfig, http=None):
        """Use a new auth block (a reload) from the next question on; returns the HttpAuth
        it replaced (the caller closes it once nothing waits on it), or None. The ACLs of
        connected clients are made anew by whoever reloads (`client_acl`)."""
        old_http = getattr(self, "http", None)
        self.config = config
        self.passwords = PasswordTable(config.passwords) if config.passwords is not None else None
        self.http = http  # an HttpAuth, or None
        self.disconnect_on_deny = config.deny_action == "disconnect"
        self._acl_active = bool(config.acl) or config.no_match == "deny" or (
            http is not None and http.config.acl_req is not None)
        return old_http if old_http is not http else None

    def authenticate(self, client: ClientInfo, password: bytes | None, cert_name: str | None = None,
                     facts: dict | None = None) -> Verdict:
        """May `client` connect? `cert_name` is the verified client certificate's CN when it
        is the username (peer_cert_as_username); `facts` fills http_auth's %p, %C, %d."""
        facts = facts or {}
        if cert_name is not None:
            return self._superuser(client, password, facts, Verdict(rc.SUCCESS, "client certificate"))
        username = client.username
        if username is not None and self.passwords is not None:
            known = self.passwords.check(username, password)
            if known is not None:
                if not known:
                    return Verdict(rc.BAD_USER_NAME_OR_PASSWORD, "wrong password")
                return self._superuser(client, password, facts, Verdict(rc.SUCCESS, "password file"))
        if self.http is not None and self.http.config.auth_req is not None:
            answer = self.http.authenticate(client, password, facts)
            if answer is True:
                return self._superuser(client, password, facts, Verdict(rc.SUCCESS, "http_auth"))
            if answer is False:
                return Verdict(rc.BAD_USER_NAME_OR_PASSWORD, "refused by http_auth")
            if answer == UNAVAILABLE:
                return Verdict(rc.SERVER_UNAVAILABLE, "http_auth unreachable")
        if username is not None and (self.passwords is not None or self.http is not None):
            if not self.config.allow_anonymous:
                return Verdict(rc.BAD_USER_NAME_OR_PASSWORD, "unknown user")
        if not self.config.allow_anonymous:
            return Verdict(rc.NOT_AUTHORIZED, "anonymous access is off")
        return Verdict(rc.SUCCESS, "anonymous")

    def _superuser(self, client: ClientInfo, password: bytes | None, facts: dict, verdict: Verdict) -> Verdict:
        if self.http is not None and self.http.config.super_req is not None:
            verdict.superuser = self.http.superuser(client, password, facts)
        return verdict

    def client_acl(self, client: ClientInfo, superuser: bool, facts: dict | None = None) -> ClientAcl | None:
        """The ACL of one connection; None when nothing restricts it (the hot path checks only that)."""
        if superuser or not self._acl_active:
            return None
        return ClientAcl(self, client, facts or {})

    def decide(self, client: ClientInfo, action: str, topic: str, facts: dict | None = None) -> bool:
        verdict = acl.decide(self.config.acl, client, action, topic)
        if verdict is None and self.http is not None and self.http.config.acl_req is not None:
            verdict = self.http.authorize(client, action, topic, facts or {})
        if verdict is None:
            return self.config.no_match == "allow"
        return verdict

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


class ClientAcl:
    """ACL decisions for one connection, remembered (`auth.cache`) so a busy publisher
    pays for each topic once per ttl."""

    __slots__ = ("_access", "_client", "_facts", "_cache", "_max_size", "_ttl")

    def __init__(self, access: AccessControl, client: ClientInfo, facts: dict) -> None:
        self._access = access
        self._client = client
        self._facts = facts
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}
        self._max_size = access.config.cache_max_size
        self._ttl = access.config.cache_ttl

    def allows(self, action: str, topic: str) -> bool:
        key = (action, topic)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        allowed = self._access.decide(self._client, action, topic, self._facts)
        if len(self._cache) >= self._max_size and key not in self._cache:
            del self._cache[next(iter(self._cache))]  # the oldest
        self._cache[key] = (allowed, now + self._ttl)
        return allowed

    def may_receive(self, topic: str) -> bool:
        """Whether a message on `topic` may be delivered to this client: the subscribe
        question for the topic itself (remembered like every other answer). A wildcard
        subscription is granted unless a rule denies it whole, so this is what keeps a
        `#` subscriber from seeing what it may not read."""
        return self.allows(SUBSCRIBE, topic)
