"""`GET /api/v4/configuration`: the running configuration, every secret masked.

NanoMQ's sections where we have the thing (`basic`, `tls`, `auth`, `auth_http`,
`http_server`), ours for the rest (`listeners`, `authorization`, `webhook`, `log`,
`limits`). NanoMQ returns passwords as written; here a password, key password, token or
credential-bearing header never leaves the process: it is `MASK` when set and null when not,
and a password in a URL is masked too.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..config.model import Config, HttpAuthRequest, ListenerConfig, TlsConfig

MASK = "******"

# Header names whose values are credentials (compared lower-cased, also as substrings).
_SECRET_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "password", "passwd", "api-key",
                        "apikey", "api_key", "x-auth", "signature", "session")


def sections(config: Config) -> dict:
    """Every section, in a stable order."""
    return {name: build(config) for name, build in SECTIONS.items()}


def _mask(value) -> str | None:
    return None if value is None else MASK


def masked_url(url: str | None) -> str | None:
    """The URL without a password in its userinfo."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        netloc = f"{parts.username or ''}:{MASK}@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return MASK  # unparsable: show nothing rather than guess where the secret is


def masked_headers(headers) -> dict:
    shown = {}
    for name, value in headers:
        lowered = name.lower()
        shown[name] = MASK if any(word in lowered for word in _SECRET_HEADER_WORDS) else value
    return shown


def _basic(config: Config) -> dict:
    mqtt = config.mqtt
    tcp = next((listener for listener in config.listeners if listener.tls is None), None)
    return {
        "url": f"nmq-tcp://{_bind(tcp)}" if tcp else None,
        "property_size": mqtt.property_size,
        "max_packet_size": mqtt.max_packet_size // 1024,  # KB, as NanoMQ reports it
        "client_max_packet_size": mqtt.max_packet_size // 1024,
        "msq_len": mqtt.max_mqueue_len,
        "qos_duration": mqtt.retry_interval,
        "keepalive_backoff": mqtt.keepalive_multiplier,
        "allow_anonymous": config.auth.allow_anonymous if config.auth else True,
        "max_inflight_window": mqtt.max_inflight_window,
        "max_topic_alias": mqtt.max_topic_alias,
        "connect_timeout": mqtt.connect_timeout,
    }


def _bind(listener: ListenerConfig) -> str:
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    return f"{host}:{listener.port}"


def _tls_block(tls: TlsConfig | None, url: str | None) -> dict:
    if tls is None:
        return {"enable": False, "url": None, "key_password": None, "keyfile": None, "certfile": None,
                "cacertfile": None, "verify_peer": False, "fail_if_no_peer_cert": False}
    return {
        "enable": True,
        "url": url,
        "key_password": _mask(tls.key_password),
        "keyfile": tls.keyfile,  # a path; the key itself is never read here
        "certfile": tls.certfile,
        "cacertfile": tls.cacertfile,
        "verify_peer": tls.verify_peer,
        "fail_if_no_peer_cert": tls.fail_if_no_peer_cert,
    }


def _tls(config: Config) -> dict:
    ssl = next((listener for listener in config.listeners if listener.tls is not None), None)
    if ssl is None:
        return _tls_block(None, None)
    return _tls_block(ssl.tls, f"tls+nmq-tcp://{_bind(ssl)}")


def _listeners(config: Config) -> list:
    return [{"name": listener.name, "bind": _bind(listener), "tls": listener.tls is not None}
            for listener in config.listeners]


def _auth(config: Config) -> list:
    """NanoMQ's shape: one {login, password} per user of the password file, password masked."""
    if config.auth is None or config.auth.passwords is None:
        return []
    return [{"login": login, "password": MASK} for login, _ in config.auth.passwords]


def _authorization(config: Config) -> dict | None:
    auth = config.auth
    if auth is None:
        return None
    return {
        "allow_anonymous": auth.allow_anonymous,
        "no_match": auth.no_match,
        "deny_action": auth.deny_action,
        "cache": {"max_size": auth.cache_max_size, "ttl": auth.cache_ttl},
        "password_file": auth.passwords is not None,
        "acl": [{"permit": "allow" if rule.permit else "deny", "action": rule.action,
                 "topics": list(rule.topics),
                 "conditions": [{"type": kind, "value": value} for kind, value in rule.conditions],
                 "combine": rule.combine} for rule in auth.acl],
    }


def _auth_request(request: HttpAuthRequest | None) -> dict | None:
    if request is None:
        return None
    return {
        "url": masked_url(request.url),
        "method": request.method,
        "headers": masked_headers(request.headers),
        "params": [name for name, _ in request.params],  # names only, as NanoMQ shows them
    }


def _auth_http(config: Config) -> dict:
    http = config.auth.http if config.auth else None
    if http is None:
        return {"enable": False}
    return {
        "enable": True,
        "timeout": http.timeout,
        "connect_timeout": http.connect_timeout,
        "pool_size": http.pool_size,
        "on_error": http.on_error,
        "cache_ttl": http.cache_ttl,
        "auth_req": _auth_request(http.auth_req),
        "super_req": _auth_request(http.super_req),
        "acl_req": _auth_request(http.acl_req),
    }


def _http_server(config: Config) -> dict:
    http = config.http_server
    if http is None:
        return {"enable": False}
    return {"enable": True, "port": http.port, "addr": http.bind, "username": http.username,
            "password": MASK, "auth_type": http.auth_type}


def _webhook(config: Config) -> dict:
    hook = config.webhook
    if hook is None:
        return {"enable": False}
    tls = hook.tls
    return {
        "enable": hook.enable,
        "url": masked_url(hook.url),
        "headers": masked_headers(hook.headers),
        "body": {"encoding": hook.encoding},
        "pool_size": hook.pool_size,
        "cancel_timeout": hook.cancel_timeout,
        "events": [{"event": rule.event, "topic": rule.topic} for rule in hook.rules],
        "tls": {"cacertfile": tls.cacertfile, "certfile": tls.certfile, "keyfile": tls.keyfile,
                "key_password": _mask(tls.key_password), "verify_peer": tls.verify_peer},
        "retry": {"max_attempts": hook.retry.max_attempts, "backoff_min": hook.retry.backoff_min,
                  "backoff_max": hook.retry.backoff_max},
        "queue": {"max_len": hook.queue.max_len, "spool_dir": hook.queue.spool_dir},
        "drain_timeout": hook.drain_timeout,
    }


def _log(config: Config) -> dict:
    log = config.log
    return {"to": list(log.to), "level": log.level, "dir": log.dir, "file": log.file,
            "rotation": {"size": log.rotation.size, "count": log.rotation.count}}


def _limits(config: Config) -> dict:
    limits = config.limits
    return {name: getattr(limits, name) for name in limits.__dataclass_fields__}


SECTIONS = {
    "basic": _basic,
    "listeners": _listeners,
    "tls": _tls,
    "auth": _auth,
    "authorization": _authorization,
    "auth_http": _auth_http,
    "http_server": _http_server,
    "webhook": _webhook,
    "log": _log,
    "limits": _limits,
}
