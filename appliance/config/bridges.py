"""Typed config and reader for NanoMQ's `bridges.mqtt.<name> { ... }` blocks (MQTT over TCP/TLS).

Keys mean what they mean in NanoMQ 0.2x (docs/en_US/config-description/bridges.md). NanoMQ
keys this appliance does not implement (QUIC, hybrid bridging, transparent bridging, the
`tcp` socket options, `bridges.mqtt.cache`, `bridges.aws`, `bridges.nng`) are a warning
each, by path. A bridge whose `server` we cannot serve (mqtt-quic://) is an error: nothing
flows over it, and that must not pass as a warning.

Topic remapping (see appliance/bridge/topics.py for the rules) is checked here, so a rule
that could never produce a valid topic stops the start with the key's path.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field

from pyhocon import ConfigTree

from ..bridge.topics import remap_problem  # the remapping rules live with the code that applies them
from .keys import Bool, Duration, Int, parse_bind
from .reader import MISSING, Section, format_path
from .units import describe

SCHEMES = {"mqtt-tcp": False, "tls+mqtt-tcp": True}  # scheme -> TLS
NOT_IMPLEMENTED_KEYS = (
    "quic_keepalive", "quic_idle_timeout", "quic_discon_timeout", "quic_handshake_timeout",
    "quic_send_idle_timeout", "quic_initial_rtt_ms", "quic_max_ack_delay_ms", "quic_multi_stream",
    "quic_qos_priority", "quic_0rtt", "hybrid_bridging", "hybrid_servers", "transparent", "tcp",
    "cancel_timeout",
)
RETAIN_KEEP = 2  # NanoMQ's NO_RETAIN: keep the flag the message carried
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class BridgeTls:
    """`ssl { ... }` of a tls+mqtt-tcp:// bridge: how the appliance checks the upstream and proves itself."""

    cacertfile: str | None = None  # None: the system trust store
    certfile: str | None = None  # client certificate (mutual TLS)
    keyfile: str | None = None
    key_password: str | None = field(default=None, repr=False)
    verify_peer: bool = True  # check the upstream's certificate and host name (ours: on by default)


@dataclass(frozen=True)
class BridgeForward:
    """One `forwards` entry: local messages matching `local_topic` go upstream."""

    local_topic: str  # topic filter on the local broker
    remote_topic: str = ""  # "" or "${topic}": the original topic; may use the filter's wildcards
    qos: int | None = None  # None: the message's own QoS
    retain: int = RETAIN_KEEP  # 0 / 1 override the flag, 2 keeps it
    prefix: str = ""
    suffix: str = ""
    index: int = 0


@dataclass(frozen=True)
class BridgeSubscription:
    """One `subscription` entry: the bridge subscribes upstream and republishes locally."""

    remote_topic: str  # topic filter subscribed on the upstream
    qos: int = 0
    local_topic: str = ""  # "" or "${topic}": the upstream topic; may use the filter's wildcards
    retain: int = RETAIN_KEEP  # 0 / 1 override the flag, 2 keeps it
    retain_as_published: bool = False  # v5 subscription option
    retain_handling: int = 0  # v5 subscription option: 0 send, 1 send if new, 2 never
    prefix: str = ""
    suffix: str = ""
    index: int = 0


@dataclass(frozen=True)
class BridgeWill:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)  # v5 will properties, codec names


@dataclass(frozen=True)
class BridgeConfig:
    """One `bridges.mqtt.<name> { ... }` block."""

    name: str
    host: str
    port: int
    tls: BridgeTls | None = None  # set for tls+mqtt-tcp://
    proto_ver: int = 4  # 3, 4 or 5
    clientid: str = ""  # "" is replaced by a stable default at read time
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    clean_start: bool = True
    keepalive: float = 60.0  # seconds
    will: BridgeWill | None = None
    forwards: tuple[BridgeForward, ...] = ()
    subscription: tuple[BridgeSubscription, ...] = ()
    max_parallel_processes: int = 2  # accepted for NanoMQ configs; one greenlet pair per bridge here
    max_send_queue_len: int = 10_000  # messages waiting for the upstream (queued + unacknowledged)
    max_recv_queue_len: int = 1024  # Receive Maximum announced upstream (v5), inbound QoS 2 held
    resend_interval: float = 5.0  # seconds between checks for unacknowledged messages (v3/v4)
    resend_wait: float = 3.0  # seconds a QoS 1/2 message waits for its ack before a DUP resend (v3/v4)
    connect_properties: dict = field(default_factory=dict)  # v5 CONNECT properties, codec names
    subscription_properties: dict = field(default_factory=dict)  # v5 SUBSCRIBE properties
    backoff_min: float = 1.0  # seconds before the first reconnect (ours)
    backoff_max: float = 30.0  # cap of the exponential backoff (ours)
    connect_timeout: float = 10.0  # seconds for TCP + TLS + CONNACK (ours)


def read_bridges(root: Section) -> tuple[BridgeConfig, ...]:
    """Every enabled `bridges.mqtt.<name>`; other bridge kinds are a warning each."""
    bridges = root.child("bridges")
    if bridges is None:
        return ()
    bridges.not_implemented("aws", "nng", "quic", "zmq")
    mqtt = bridges.child("mqtt")
    found: list[BridgeConfig] = []
    if mqtt is not None:
        mqtt.not_implemented("cache", note="messages wait in memory, bounded by max_send_queue_len")
        for name in mqtt.keys():
            if name in mqtt.seen:
                continue
            section = mqtt.child(name)
            if not _NAME.match(name):
                raise mqtt.fail(name, "a bridge name is 1-64 letters, digits, '_', '-' or '.'")
            bridge = _read_bridge(section, name)
            section.finish()
            if bridge is not None:
                found.append(bridge)
        mqtt.finish()
    bridges.finish()
    return tuple(found)


def _read_bridge(section: Section, name: str) -> BridgeConfig | None:
    if not section.value("enable", Bool(), True):
        section.seen.update(section.keys())
        return None
    host, port, use_tls = _read_server(section)
    defaults = BridgeConfig(name, host, port)
    proto_ver = section.value("proto_ver", Int(3, 5), defaults.proto_ver)
    section.not_implemented(*NOT_IMPLEMENTED_KEYS)
    clientid = section.string("clientid", "") or _default_clientid(name, proto_ver)
    if proto_ver == 3 and len(clientid) > 23:
        raise section.fail("clientid", f"MQTT 3.1 allows at most 23 characters, got {len(clientid)}")
    config = BridgeConfig(
        name=name, host=host, port=port,
        tls=_read_tls(section, use_tls),
        proto_ver=proto_ver,
        clientid=clientid,
        username=section.string("username", None),
        password=section.string("password", None),
        clean_start=section.value("clean_start", Bool(), defaults.clean_start),
        keepalive=section.value("keepalive", Duration(positive=False), defaults.keepalive),
        will=_read_will(section, proto_ver),
        forwards=_read_forwards(section),
        subscription=_read_subscriptions(section),
        max_parallel_processes=section.value("max_parallel_processes", Int(1), defaults.max_parallel_processes),
        max_send_queue_len=section.value("max_send_queue_len", Int(1, 10_000_000), defaults.max_send_queue_len),
        max_recv_queue_len=section.value("max_recv_queue_len", Int(1), defaults.max_recv_queue_len),
        # NanoMQ writes these two in milliseconds; a unit (5s) is read as written.
        resend_interval=section.value("resend_interval", Duration(0.001, "milliseconds"), defaults.resend_interval),
        resend_wait=section.value("resend_wait", Duration(0.001, "milliseconds"), defaults.resend_wait),
        connect_properties=_read_connect_properties(section, proto_ver),
        subscription_properties=_read_subscription_properties(section, proto_ver),
        backoff_min=section.value("backoff_min", Duration(), defaults.backoff_min),
        backoff_max=section.value("backoff_max", Duration(), defaults.backoff_max),
        connect_timeout=section.value("connect_timeout", Duration(), defaults.connect_timeout),
    )
    if config.keepalive > 65535:
        raise section.fail("keepalive", "must be 65535 seconds or less")
    if config.backoff_max < config.backoff_min:
        raise section.fail("backoff_max", f"must be at least backoff_min ({config.backoff_min:g}s)")
    if not config.forwards and not config.subscription:
        section.ctx.warn(section.path, f"{format_path(section.path)}: neither forwards nor subscription; "
                                       "the bridge connects but moves nothing")
    return config


def _default_clientid(name: str, proto_ver: int) -> str:
    # Stable across restarts, so clean_start = false finds its session upstream again.
    clientid = f"{socket.gethostname()}-bridge-{name}"
    return clientid[:23] if proto_ver == 3 else clientid


def _read_server(section: Section) -> tuple[str, int, bool]:
    server = section.raw("server")
    form = 'expected "mqtt-tcp://host:port" or "tls+mqtt-tcp://host:port"'
    if server is MISSING:
        raise section.fail(None, f"a bridge needs server = \"mqtt-tcp://host:1883\" ({form})")
    if not isinstance(server, str):
        raise section.fail("server", f"{form}, got {describe(server)}")
    scheme, sep, rest = server.partition("://")
    scheme = scheme.lower()
    if scheme == "mqtt-quic":
        raise section.fail("server", "MQTT over QUIC (mqtt-quic://) is not implemented; "
                                     "use mqtt-tcp:// or tls+mqtt-tcp://")
    if not sep or scheme not in SCHEMES:
        raise section.fail("server", f"{form}, got {server!r}")
    try:
        host, port = parse_bind(rest.rstrip("/"))
    except ValueError as exc:
        raise section.fail("server", f"{form}: {exc}") from None
    if port == 0:
        raise section.fail("server", f"port must be 1..65535, got {server!r}")
    return host, port, SCHEMES[scheme]


def _read_tls(section: Section, use_tls: bool) -> BridgeTls | None:
    tls = section.child("ssl")
    if tls is None:
        return BridgeTls() if use_tls else None
    if not tls.value("enable", Bool(), True) or not use_tls:
        if not use_tls:
            section.ctx.warn(tls.path, f"{format_path(tls.path)} is only used with a tls+mqtt-tcp:// server "
                                       "(ignored)")
        tls.seen.update(tls.keys())
        return None
    config = BridgeTls(
        cacertfile=tls.string("cacertfile", None),
        certfile=tls.string("certfile", None),
        keyfile=tls.string("keyfile", None),
        key_password=tls.string("key_password", None),
        verify_peer=tls.value("verify_peer", Bool(), True),
    )
    tls.finish()
    if config.keyfile and not config.certfile:
        raise tls.fail("keyfile", "a client key needs certfile too")
    if config.certfile and not config.keyfile:
        raise tls.fail("certfile", "a client certificate needs keyfile too")
    for key in ("cacertfile", "certfile", "keyfile"):
        path = getattr(config, key)
        if path is not None and not os.access(path, os.R_OK):
            raise tls.fail(key, f"cannot read {path!r}")
    return config


def _read_will(section: Section, proto_ver: int) -> BridgeWill | None:
    will = section.child("will")
    if will is None:
        return None
    topic = will.string("topic", None)
    if not topic:
        raise will.fail("topic", "a will needs a topic")
    problem = topic_name_problem(topic)
    if problem:
        raise will.fail("topic", problem)
    properties = {}
    props = will.child("properties")
    if props is not None:
        if proto_ver == 5:
            properties = _read_properties(props, _WILL_PROPERTIES)
        else:
            section.ctx.warn(props.path, f"{format_path(props.path)}: will properties need proto_ver = 5 (ignored)")
            props.seen.update(props.keys())
    config = BridgeWill(
        topic=topic,
        payload=will.string("payload", "").encode(),
        qos=will.value("qos", Int(0, 2), 0),
        retain=will.value("retain", Bool(), False),
        properties=properties,
    )
    will.finish()
    return config


# NanoMQ's property key -> (codec name, low, high); None bounds: a string.
_WILL_PROPERTIES = {
    "payload_format_indicator": ("payload_format_indicator", 0, 1),
    "message_expiry_interval": ("message_expiry_interval", 0, 0xFFFFFFFF),
    "content_type": ("content_type", None, None),
    "response_topic": ("response_topic", None, None),
    "correlation_data": ("correlation_data", None, None),
    "will_delay_interval": ("will_delay_interval", 0, 0xFFFFFFFF),
}
_CONNECT_PROPERTIES = {
    "maximum_packet_size": ("maximum_packet_size", 1, 0xFFFFFFFF),
    "receive_maximum": ("receive_maximum", 1, 65535),
    "request_problem_information": ("request_problem_information", 0, 1),
    "request_response_information": ("request_response_information", 0, 1),
    "session_expiry_interval": ("session_expiry_interval", 0, 0xFFFFFFFF),
}
_SUBSCRIPTION_PROPERTIES = {
    "identifier": ("subscription_identifier", 1, 268_435_455),
}


def _read_properties(section: Section, known: dict) -> dict:
    properties: dict = {}
    for key, (name, low, high) in known.items():
        if low is None:
            value = section.string(key, None)
            if value:  # NanoMQ writes "" for "not set"
                properties[name] = value.encode() if name == "correlation_data" else value
        else:
            value = section.value(key, Int(low, high), None)
            if value is not None and not (value == 0 and name in ("message_expiry_interval",
                                                                  "will_delay_interval",
                                                                  "payload_format_indicator")):
                properties[name] = value
    user = section.child("user_property")
    if user is not None:
        pairs = []
        for key in user.keys():
            pairs.append((key, user.string(key, "")))
        if pairs:
            properties["user_property"] = pairs
        user.finish()
    return properties


def _read_connect_properties(section: Section, proto_ver: int) -> dict:
    # NanoMQ's docs write both conn_properties and conn_property; the issue says connect_properties.
    names = [key for key in ("conn_properties", "conn_property", "connect_properties") if section.has(key)]
    if len(names) > 1:
        raise section.fail(names[1], f"write one of {', '.join(names)}, not both")
    if not names:
        return {}
    props = section.child(names[0])
    if proto_ver != 5:
        section.ctx.warn(props.path, f"{format_path(props.path)} needs proto_ver = 5 (ignored)")
        props.seen.update(props.keys())
        return {}
    props.not_implemented("topic_alias_maximum", note="the bridge never accepts topic aliases from the upstream")
    properties = _read_properties(props, _CONNECT_PROPERTIES)
    props.finish()
    return properties


def _read_subscription_properties(section: Section, proto_ver: int) -> dict:
    names = [key for key in ("sub_properties", "subscription_properties") if section.has(key)]
    if len(names) > 1:
        raise section.fail(names[1], f"write one of {', '.join(names)}, not both")
    if not names:
        return {}
    props = section.child(names[0])
    if proto_ver != 5:
        section.ctx.warn(props.path, f"{format_path(props.path)} needs proto_ver = 5 (ignored)")
        props.seen.update(props.keys())
        return {}
    properties = _read_properties(props, _SUBSCRIPTION_PROPERTIES)
    props.finish()
    return properties


def _entries(section: Section, key: str) -> list:
    value = section.raw(key)
    if value is MISSING:
        return []
    if not isinstance(value, list):
        raise section.fail(key, f"expected a list, got {describe(value)}")
    for index in range(len(value)):
        if section.at(key) + (index,) in section.ctx.merged:
            raise section.ctx.error(section.at(key) + (index,),
                                    "entries written on one line without a comma, { ... } { ... }, are merged "
                                    "into one by HOCON; separate them with a comma or a new line")
    return value


def _read_forwards(section: Section) -> tuple[BridgeForward, ...]:
    found = []
    for index, item in enumerate(_entries(section, "forwards")):
        path = section.at("forwards") + (index,)
        if isinstance(item, str):  # NanoMQ's plain form: a list of local filters, topics unchanged
            problem = topic_filter_problem(item)
            if problem:
                raise section.ctx.error(path, problem)
            found.append(BridgeForward(local_topic=item, index=index))
            continue
        if not isinstance(item, ConfigTree):
            raise section.ctx.error(path, f"expected a topic filter or {{ local_topic, remote_topic, qos }}, "
                                          f"got {describe(item)}")
        entry = Section(section.ctx, item, path)
        local = entry.string("local_topic", None)
        if local is None:
            raise entry.fail(None, "a forward needs local_topic (the local topic filter to forward)")
        problem = topic_filter_problem(local)
        if problem:
            raise entry.fail("local_topic", problem)
        forward = BridgeForward(
            local_topic=local,
            remote_topic=entry.string("remote_topic", ""),
            qos=entry.value("qos", Int(0, 2), None),
            retain=entry.value("retain", Int(0, 2), RETAIN_KEEP),
            prefix=entry.string("prefix", ""),
            suffix=entry.string("suffix", ""),
            index=index,
        )
        entry.finish()
        problem = remap_problem(forward.local_topic, forward.remote_topic, forward.prefix, forward.suffix)
        if problem:
            raise entry.fail("remote_topic", problem)
        found.append(forward)
    return tuple(found)


def _read_subscriptions(section: Section) -> tuple[BridgeSubscription, ...]:
    found = []
    for index, item in enumerate(_entries(section, "subscription")):
        path = section.at("subscription") + (index,)
        if not isinstance(item, ConfigTree):
            raise section.ctx.error(path, f"expected {{ remote_topic, qos, local_topic }}, got {describe(item)}")
        entry = Section(section.ctx, item, path)
        if entry.has("topic") and entry.has("remote_topic"):
            raise entry.fail("topic", "write remote_topic (topic is NanoMQ's older name for it), not both")
        key = "remote_topic" if entry.has("remote_topic") or not entry.has("topic") else "topic"
        remote = entry.string(key, None)
        if remote is None:
            raise entry.fail(None, "a subscription needs remote_topic (the upstream topic filter)")
        problem = topic_filter_problem(remote)
        if problem:
            raise entry.fail(key, problem)
        subscription = BridgeSubscription(
            remote_topic=remote,
            qos=entry.value("qos", Int(0, 2), 0),
            local_topic=entry.string("local_topic", ""),
            retain=entry.value("retain", Int(0, 2), RETAIN_KEEP),
            retain_as_published=entry.value("retain_as_published", Bool(), False),
            retain_handling=entry.value("retain_handling", Int(0, 2), 0),
            prefix=entry.string("prefix", ""),
            suffix=entry.string("suffix", ""),
            index=index,
        )
        entry.finish()
        problem = remap_problem(subscription.remote_topic, subscription.local_topic,
                                subscription.prefix, subscription.suffix)
        if problem:
            raise entry.fail("local_topic", problem)
        found.append(subscription)
    return tuple(found)


def topic_filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT topic filter, or None."""
    if not topic:
        return "a topic filter cannot be empty"
    if "\x00" in topic:
        return "a topic filter cannot contain NUL"
    levels = topic.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return f"'#' must be a whole last level, got {topic!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, got {topic!r}"
    return None


def topic_name_problem(topic: str) -> str | None:
    """Why `topic` is not a valid topic name (to publish to), or None."""
    if not topic:
        return "a topic cannot be empty"
    if "+" in topic or "#" in topic:
        return f"a topic to publish to cannot contain wildcards, got {topic!r}"
    if "\x00" in topic:
        return "a topic cannot contain NUL"
    return None
