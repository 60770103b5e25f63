"""NanoMQ's pre-0.14 key=value format (its `nanomq_old.conf`, read by `nanomq --old_conf`).

Parsed as HOCON such a file either fails on `tls+nmq-tcp://` or, worse, loads: `//` starts
a HOCON comment, so `url=nmq-tcp://0.0.0.0:1883` is `url = "nmq-tcp:"`, and the rest are
unknown keys; the broker that starts is not the one the file describes. So the format is
recognised by its top-level keys, which no HOCON nanomq.conf has, and refused with how to
write it instead.
"""

from __future__ import annotations

import re

# Top-level keys of the old format (NanoMQ 0.3-0.13 etc/nanomq.conf and nanomq_old.conf).
_OLD_KEY = re.compile(
    r"^(url|daemon|num_taskq_thread|max_taskq_thread|parallel|property_size|max_packet_size|"
    r"client_max_packet_size|msq_len|qos_duration|keepalive_backoff|allow_anonymous|"
    r"enable_ipc_internal|acl_enable|acl_nomatch|enable_acl_cache|acl_cache_max_size|"
    r"acl_cache_ttl|acl_deny_action|acl\.rule\.\d+|tls\.\w+|websocket\.\w+|web\.hook\.[\w.-]+|"
    r"auth\.http\.[\w.-]+|auth\.\d+\.\w+|bridge\.mqtt\.[\w.-]+|sqlite\.\w+)\s*=",
    re.MULTILINE,
)

OLD_FORMAT_PROBLEM = (
    "this is NanoMQ's pre-0.14 key=value format (nanomq_old.conf, read by nanomq --old_conf), "
    "which this appliance does not read, so as not to start a broker other than the one it describes; "
    "write it in NanoMQ 0.19+ HOCON (see etc/nanomq.conf): url= is listeners.tcp.bind, tls.* is "
    "listeners.ssl { }, msq_len= is mqtt.max_mqueue_len, qos_duration= is mqtt.retry_interval, "
    "max_packet_size= (KB) is mqtt.max_packet_size, allow_anonymous= is auth.allow_anonymous, "
    "acl.rule.N= are auth.acl rules, http_server.* is http_server { }, log.* is log { }, and "
    "web.hook.* is webhook { url, headers, body.encoding, pool_size, events = [...] }"
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
