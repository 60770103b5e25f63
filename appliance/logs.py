"""Logging set up from the `log` block: console (stderr) and/or a rotating file.

Two rules hold whatever `log.level` says:
- Secrets never reach a log line. Every handler runs `SecretFilter`, which rewrites each
  record (message, traceback) before it is written: the configured secrets by value
  (passwords, key passwords, header values of Authorization-like headers), and anything
  shaped like one (`password=...` in a query or form, `"token": "..."`, `Authorization:
  ...`, `user:pass@` in a URL), including the http_auth parameters that carry a client's
  password (%P) whatever they are named. urllib3's debug line
  `"GET /auth?...&password=..."` is the case that made this necessary.
- Where the broker listens is always said: `announce()` logs at info through a logger
  that is never quieter than info, so the start-up lines (`MQTT listener <name> listening
  on <host>:<port>`, `HTTP server listening on <host>:<port>`) appear at the default
  level (warn) too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from .config.model import Config, LogConfig

# NanoMQ's level names; `trace` is finer than debug, `fatal` is critical.
LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_ANNOUNCER = logging.getLogger("appliance.listening")
_ANNOUNCER.setLevel(logging.INFO)  # whatever the root logger's level (log.level) is

# Parameter, field and header names whose values are secrets wherever they appear.
SECRET_NAMES = ("password", "passwd", "pwd", "pass", "secret", "token", "access_token", "auth_token",
                "key_password", "api_key", "apikey", "client_secret")
SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "x-auth-token", "cookie")
_HIDDEN = "***"
_SHORTEST_VALUE = 4  # shorter configured values are left to the name patterns: "ab" is everywhere


def announce(message: str, *args) -> None:
    """Log a line that must appear at every log.level (where the broker listens)."""
    _ANNOUNCER.info(message, *args)


class SecretFilter(logging.Filter):
    """Rewrites every record so that no secret reaches a handler (see the module doc)."""

    def __init__(self, values: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        super().__init__()
        self._values = sorted({form for value in values if value and len(value) >= _SHORTEST_VALUE
                               for form in (value, quote_plus(value), quote(value, safe=""))},
                              key=len, reverse=True)  # longest first: one value may hold another
        names = "|".join(re.escape(name) for name in sorted({*SECRET_NAMES, *names}, key=len, reverse=True))
        headers = "|".join(re.escape(name) for name in SECRET_HEADERS)
        self._patterns = (
            # a query string or form: password=...&  (also name%3D... is not decoded, by design)
            (re.compile(rf"(?i)((?:^|[?&;\s,(\[{{])(?:{names})=)[^&\s\"',;)\]}}]*"), r"\1" + _HIDDEN),
            # JSON or a Python dict: "password": "..." / 'token': '...'
            (re.compile(rf"(?i)([\"'](?:{names}|{headers})[\"']\s*:\s*)([\"'])(?:(?!\2).)*\2"),
             r"\1\2" + _HIDDEN + r"\2"),
            # an HTTP header line: Authorization: Basic ...
            (re.compile(rf"(?im)(^|[\s,{{(])((?:{headers})\s*:\s*)(?![\"'])[^\r\n,}})]+"), r"\1\2" + _HIDDEN),
            # credentials in a URL: scheme://user:pass@host
            (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@"), r"\1" + _HIDDEN + "@"),
        )

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, _HIDDEN)
        for pattern, replacement in self._patterns:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging reports it, unredacted args must not
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configured_secrets(config: Config) -> tuple[list[str], list[str]]:
    """(secret values, names of parameters that carry secrets) found in `config`: the
    values the filter hides wherever they appear, and the http_auth parameters filled with
    a client's password (%P), whose values are only known per request."""
    values: list[str] = []
    names: list[str] = []
    if config.http_server is not None:
        values.append(config.http_server.password)
    for listener in config.listeners:
        if listener.tls is not None and listener.tls.key_password:
            values.append(listener.tls.key_password)
    if config.webhook is not None:
        values += [v for k, v in config.webhook.headers if k.lower() in SECRET_HEADERS]
        if config.webhook.tls.key_password:
            values.append(config.webhook.tls.key_password)
    auth = config.auth
    if auth is not None:
        # Password-file entries are left out: clients' passwords are never logged, and a
        # long file would cost every log line thousands of searches.
        if auth.http is not None:
            for request in (auth.http.auth_req, auth.http.super_req, auth.http.acl_req):
                if request is None:
                    continue
                values += [v for k, v in request.headers if k.lower() in SECRET_HEADERS]
                names += [name for name, template in request.params if "%P" in template]
    return values, names


def configure_logging(config: LogConfig, secrets: SecretFilter | None = None) -> None:
    """Install the handlers of the `log` block on the root logger; `secrets` (by default
    one that knows only the secret-shaped names) runs on every handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(_FORMAT)
    secrets = secrets or SecretFilter()
    handlers: list[logging.Handler] = []
    if "console" in config.to:
        handlers.append(logging.StreamHandler())
    if "file" in config.to:
        handlers.append(logging.handlers.RotatingFileHandler(
            os.path.join(config.dir, config.file),
            maxBytes=config.rotation.size,
            backupCount=config.rotation.count,
        ))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(secrets)
        root.addHandler(handler)
    root.setLevel(LEVELS[config.level])
