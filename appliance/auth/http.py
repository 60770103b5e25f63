"""`auth.http_auth`: ask the user's HTTP service whether a client may connect (auth_req),
is a superuser (super_req), or may publish or subscribe (acl_req), as NanoMQ and EMQX do.

2xx allows (a body of `ignore` passes the question on), 4xx refuses, anything else,
a timeout or a refused connection is an error, answered per `on_error`. Requests run on
the asking client's greenlet over one urllib3 pool, so a slow service delays only the
clients it is asked about. Answers are cached for `cache_ttl`. Passwords never reach logs:
errors are logged by kind and host, never with the request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from urllib.parse import urlencode

import urllib3

from ..broker.hooks import ClientInfo
from ..config.model import HttpAuthConfig, HttpAuthRequest

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
_CACHE_MAX = 10_000
_ACCESS = {"subscribe": "1", "publish": "2"}  # %A, as EMQX numbers it


class HttpAuth:
    """One pool of connections to the auth service, and the answers it gave lately."""

    def __init__(self, config: HttpAuthConfig, stats=None) -> None:
        self.config = config
        self.stats = stats
        self._pool = urllib3.PoolManager(
            num_pools=3, maxsize=config.pool_size, block=True, retries=False,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.timeout),
        )
        self._cache: dict[tuple, tuple[object, float]] = {}

    def authenticate(self, client: ClientInfo, password: bytes | None, facts: dict) -> object:
        """True, False, None (ignore) or UNAVAILABLE (an error, with on_error = deny)."""
        return self._ask(self.config.auth_req, client, password, facts, error_answer=UNAVAILABLE)

    def superuser(self, client: ClientInfo, password: bytes | None, facts: dict) -> bool:
        return self._ask(self.config.super_req, client, password, facts, error_answer=False) is True

    def authorize(self, client: ClientInfo, action: str, topic: str, facts: dict) -> bool | None:
        facts = {**facts, "A": _ACCESS[action], "t": topic}
        answer = self._ask(self.config.acl_req, client, None, facts, error_answer=False)
        return answer if answer != UNAVAILABLE else False

    def close(self) -> None:
        self._pool.clear()

    # -- one question ----------------------------------------------------------------

    def _ask(self, request: HttpAuthRequest, client: ClientInfo, password: bytes | None, facts: dict,
             error_answer: object) -> object:
        values = {
            "u": client.username or "", "c": client.client_id, "a": client.peer[0],
            "P": (password or b"").decode("utf-8", "replace"), "r": "mqtt", "m": "",
            "p": "", "C": "", "d": "", "A": "", "t": "", **facts,
        }
        params = [(name, _fill(template, values)) for name, template in request.params]
        # The key holds a digest of the password, never the password.
        key = (request.url, tuple((n, v if "%P" not in t else hashlib.sha256(v.encode()).hexdigest())
                                  for (n, v), (_, t) in zip(params, request.params)))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        answer = self._request(request, params)
        if answer is UNAVAILABLE:
            if self.stats is not None:
                self.stats.http_auth_errors += 1
            return True if self.config.on_error == "allow" else error_answer
        if self.config.cache_ttl:
            if len(self._cache) >= _CACHE_MAX:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
            self._cache[key] = (answer, now + self.config.cache_ttl)
        return answer

    def _request(self, request: HttpAuthRequest, params: list[tuple[str, str]]) -> object:
        headers = dict(request.headers)
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if content_type is None:
            content_type = headers["Content-Type"] = "application/x-www-form-urlencoded"
        method = request.method.upper()
        url, body = request.url, None
        if method == "GET":
            url += ("&" if "?" in url else "?") + urlencode(params)
        elif "json" in content_type.lower():
            body = json.dumps(dict(params)).encode()
        else:
            body = urlencode(params).encode()
        try:
            response = self._pool.request(method, url, body=body, headers=headers, redirect=False,
                                          pool_timeout=self.config.timeout, preload_content=True)
        except Exception as error:  # noqa: BLE001 - any failure of the service is an error answer
            log.warning("http_auth: %s failed: %s", _where(request.url), type(error).__name__)
            return UNAVAILABLE
        status = response.status
        if 200 <= status < 300:
            return None if response.data.strip().lower() == b"ignore" else True
        if 400 <= status < 500:
            return False
        log.warning("http_auth: %s answered HTTP %d", _where(request.url), status)
        return UNAVAILABLE


def _fill(template: str, values: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(template):
        char = template[i]
        if char == "%" and i + 1 < len(template):
            nxt = template[i + 1]
            out.append("%" if nxt == "%" else values.get(nxt, "%" + nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _where(url: str) -> str:
    parsed = urllib3.util.parse_url(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path or ''}"
