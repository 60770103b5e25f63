"""NanoMQ's pre-0.14 key=value format (its `nanomq_old.conf`, read by `nanomq --old_conf`).

Parsed as HOCON such a file either fails on `tls+nmq-tcp://` or, worse, loads: `//` starts
a HOCON comment, so `url=nmq-tcp://0.0.0.0:1883` is `url = "nmq-tcp:"`, and the rest are
unknown keys; the broker that starts is not the one the file describes. So the format is
recognised by its top-level keys, which no HOCON nanomq.conf has (or named by --old_conf),
and read key by key onto the HOCON keys (`read_old_format`): the same checks then apply,
with the old file's line numbers; what we do not implement is a warning, as in HOCON.
"""

from __future__ import annotations

import json
import re

from pyhocon import ConfigTree

from .errors import ConfigError
from .positions import Positions

# Top-level keys of the old format (NanoMQ 0.3-0.13 etc/nanomq.conf and nanomq_old.conf).
_OLD_KEY = re.compile(
    r"^(url|daemon|num_taskq_thread|max_taskq_thread|parallel|property_size|max_packet_size|"
    r"client_max_packet_size|msq_len|qos_duration|keepalive_backoff|allow_anonymous|"
    r"enable_ipc_internal|acl_enable|acl_nomatch|enable_acl_cache|acl_cache_max_size|"
    r"acl_cache_ttl|acl_deny_action|acl\.rule\.\d+|tls\.\w+|websocket\.\w+|web\.hook\.[\w.-]+|"
    r"auth\.http\.[\w.-]+|auth\.\d+\.\w+|bridge\.mqtt\.[\w.-]+|sqlite\.\w+)\s*=",
    re.MULTILINE,
)

OLD_FORMAT_NOTE = (
    "read as NanoMQ's pre-0.14 key=value format (nanomq_old.conf): url= is listeners.tcp.bind, "
    "tls.* is listeners.ssl, msq_len= is mqtt.max_mqueue_len, qos_duration= is mqtt.retry_interval, "
    "max_packet_size= (KB) is mqtt.max_packet_size, acl.rule.N= are auth.acl rules, web.hook.* is "
    "webhook; consider writing it in HOCON (etc/nanomq.conf)"
)


def old_format_line(text: str) -> int | None:
    """The line of the first old-format key at the start of a line outside any { }, or None."""
    depth, pos = 0, 0
    for match in _OLD_KEY.finditer(text):
        depth, pos = _depth(text, pos, match.start(), depth), match.start()
        if depth == 0:
            return text.count("\n", 0, match.start()) + 1
    return None


def _depth(text: str, start: int, end: int, depth: int) -> int:
    """Brace depth at `end`, from `depth` at `start` (strings and comments skipped)."""
    pos = start
    while pos < end:
        c = text[pos]
        if c == "#" or text.startswith("//", pos):
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline
        elif c == '"':
            close = text.find('"', pos + 1)
            pos = end if close < 0 else close + 1
        else:
            depth += (c == "{") - (c == "}")
            pos += 1
    return depth


# -- reading it ------------------------------------------------------------------------------
# Old key -> HOCON path, where the value keeps its meaning (values stay strings: every key
# kind parses strings as the environment's do).
_SAME = {
    "url": ("listeners", "tcp", "bind"),
    "property_size": ("mqtt", "property_size"),
    "msq_len": ("mqtt", "max_mqueue_len"),
    "qos_duration": ("mqtt", "retry_interval"),
    "allow_anonymous": ("auth", "allow_anonymous"),
    "acl_nomatch": ("auth", "no_match"),
    "acl_cache_max_size": ("auth", "cache", "max_size"),
    "acl_cache_ttl": ("auth", "cache", "ttl"),
    "acl_deny_action": ("auth", "deny_action"),
    "web.hook.body.encoding_of_payload_field": ("webhook", "body", "encoding"),
    "web.hook.ssl.verify": ("webhook", "ssl", "verify_peer"),
}
# Old prefix -> HOCON block; the rest of the old key is the key inside it.
_PREFIXES = (
    ("tls.", ("listeners", "ssl")),
    ("websocket.", ("listeners", "ws")),
    ("http_server.", ("http_server",)),
    ("log.", ("log",)),
    ("web.hook.headers.", ("webhook", "headers")),  # the rest is one header name
    ("web.hook.", ("webhook",)),
    ("auth.http.", ("auth", "http_auth")),
    ("bridge.", ("bridges",)),
    ("sqlite.", ("sqlite",)),
)
_SYSTEM = ("daemon", "num_taskq_thread", "max_taskq_thread", "parallel")
_NOT_IMPLEMENTED = ("client_max_packet_size", "enable_ipc_internal", "enable_acl_cache")
# Blocks the old format turned on only with `<prefix>enable=true`.
_OFF_UNLESS_ENABLED = (("listeners", "ssl"), ("http_server",), ("webhook",), ("auth", "http_auth"))
_RULE = re.compile(r"^web\.hook\.rule\.(\w+)\.(\w+)\.\d+$")
_ACL_RULE = re.compile(r"^acl\.rule\.\d+$")
_LOGIN = re.compile(r"^auth\.(\d+)\.(login|password)$")


def read_old_format(text: str, source: str):
    """NanoMQ's old key=value `text` as the tree its HOCON form would parse to, the line of
    each key path (for errors) and warnings. Values are checked later, as any file's."""
    tree: dict = {}  # plain dicts while building; a ConfigTree at the end
    positions, warnings = Positions(), []
    old_key = ""  # the old key being mapped, for positions.written
    logins: dict[str, tuple[int, str]] = {}
    passwords: dict[str, tuple[int, str]] = {}
    acl_enabled = True

    def node_at(path: tuple, line: int) -> dict:
        node = tree
        for depth, part in enumerate(path):
            positions.lines.setdefault(path[: depth + 1], line)
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        return node

    def put(path: tuple, value, line: int) -> None:
        node_at(path[:-1], line)[path[-1]] = value
        positions.lines[path] = line
        positions.written[path] = f"{old_key}="

    def append(path: tuple, item, line: int) -> None:
        items = node_at(path[:-1], line).setdefault(path[-1], [])
        positions.lines.setdefault(path, line)
        positions.lines[path + (len(items),)] = line
        positions.written[path + (len(items),)] = f"{old_key}="
        items.append(item)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        old_key = key
        if not sep or not key:
            raise ConfigError(source, number, None, "expected key=value (this file is in NanoMQ's old format)")
        if key in _SAME:
            put(_SAME[key], value, number)
        elif key == "max_packet_size":  # kilobytes in the old format
            put(("mqtt", "max_packet_size"), value + "KB" if value.isdigit() else value, number)
        elif key == "keepalive_backoff":  # thousandths when written as an integer (1250 is 1.25)
            put(("mqtt", "keepalive_multiplier"), str(int(value) / 1000) if value.isdigit() else value, number)
        elif key in _SYSTEM:
            put(("system", key), value, number)
        elif key in _NOT_IMPLEMENTED:
            warnings.append((number, f"{key} is not implemented (ignored)"))
        elif key == "acl_enable":
            acl_enabled = value.lower() in ("true", "on", "yes")
        elif _ACL_RULE.match(key):
            append(("auth", "acl", "rules"), _json_object(value, source, number), number)
        elif _LOGIN.match(key):
            index, field = _LOGIN.match(key).groups()
            (logins if field == "login" else passwords)[index] = (number, value)
        elif _RULE.match(key):
            category, name = _RULE.match(key).groups()
            rule = _json_object(value, source, number)
            rule.pop("action", None)  # NanoMQ took the event from the key, as the 0.14-0.18 form does
            rule["event"] = f"on_{category}_{name}"
            append(("webhook", "events"), rule, number)
        else:
            for prefix, block in _PREFIXES:
                if key.startswith(prefix):
                    rest = key[len(prefix):]
                    rest_path = (rest,) if block[-1] == "headers" else tuple(rest.split("."))
                    put(block + rest_path, value, number)
                    break
            else:
                put(tuple(key.split(".")), value, number)  # unknown: warned as such, by path
    for index, (number, login) in logins.items():
        if index not in passwords:
            raise ConfigError(source, number, None, f"auth.{index}.login needs auth.{index}.password")
        old_key = f"auth.{index}.password"
        put(("auth", "password", login), passwords[index][1], passwords[index][0])
    if not acl_enabled:
        tree.get("auth", {}).pop("acl", None)
    for block in _OFF_UNLESS_ENABLED:
        node = tree
        for part in block:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and str(node.get("enable", "false")).lower() not in ("true", "on", "yes"):
            node["enable"] = "false"
    _params_to_objects(tree)
    return _tree(tree), positions, warnings


def _quoted(key: str) -> str:
    # pyhocon's own trees hold a key with a dot as '"a.b"' (see reader.clean_key).
    return f'"{key}"' if "." in key else key


def _json_object(value: str, source: str, line: int):
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ConfigError(source, line, None, f"expected a JSON object {{...}}: {exc}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(source, line, None, "expected a JSON object {...}")
    return parsed


def _tree(value):
    if isinstance(value, dict):
        tree = ConfigTree()
        for key, item in value.items():
            tree[_quoted(key)] = _tree(item)
        return tree
    if isinstance(value, list):
        return [_tree(item) for item in value]
    return value


def _params_to_objects(tree: dict) -> None:
    """auth.http.<req>.params = clientid=%c,username=%u -> params { clientid = "%c", ... }."""
    http = tree.get("auth", {}).get("http_auth")
    if not isinstance(http, dict):
        return
    for request in ("auth_req", "super_req", "acl_req"):
        section = http.get(request)
        if isinstance(section, dict) and isinstance(section.get("params"), str):
            pairs = (pair.partition("=") for pair in section["params"].split(","))
            section["params"] = {name.strip(): template.strip() for name, _, template in pairs if name.strip()}
