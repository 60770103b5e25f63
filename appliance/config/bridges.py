"""The model and reader of NanoMQ's `bridges.mqtt.<name> { ... }` blocks (MQTT over TCP/TLS).

Keys mean what they mean in NanoMQ 0.2x (docs/en_US/config-description/bridges.md) and are
declared once, as `key(...)` fields of the blocks below (keys.py): path, kind and bounds,
default, NanoMQ's or ours, doc. The reader (`read_block`), the model's own checks and the
README's table come from those declarations; `server` and the `enable` switches are Key
constants, as a listener's bind is. The list-shaped parts (`forwards`, `subscription`, the
v5 property blocks) are Structure keys with their own readers here; each list entry is a
block of declared keys too.

NanoMQ keys this appliance does not implement (QUIC, hybrid bridging, transparent bridging,
the `tcp` socket options, `bridges.mqtt.cache`, `bridges.aws`, `bridges.nng`) are a warning
each, by path. A bridge whose `server` we cannot serve (mqtt-quic://) is an error: nothing
flows over it, and that must not pass as a warning.

Topic remapping (see appliance/bridge/topics.py for the rules) is checked by the model, so
a rule that could never produce a valid topic stops the start with the key's path.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from dataclasses import dataclass, field

from pyhocon import ConfigTree

from ..bridge.topics import remap_problem  # the remapping rules live with the code that applies them
from . import units
from .blocks import check_readable
from .keys import (
    KEY, OURS, Block, Bool, Duration, Int, Invalid, Key, Kind, Structure, Text, key, key_of, parse_bind,
)
from .reader import MISSING, Section, format_path, read_block
from .topics import topic_filter_problem, topic_name_problem
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
BRIDGE = "bridges.mqtt.<name>"
PATH = Text(form="path", optional=True, empty=False)


# -- kinds of our own ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server(Kind):
    """NanoMQ's `server`: "mqtt-tcp://host:port" or "tls+mqtt-tcp://host:port" -> (host, port, tls)."""

    form = '"mqtt-tcp://host:port" or "tls+mqtt-tcp://host:port"'

    def convert(self, value):
        expected = f"expected {self.form}"
        if not isinstance(value, str):
            raise ValueError(f"{expected}, got {describe(value)}")
        scheme, sep, rest = value.partition("://")
        scheme = scheme.lower()
        if scheme == "mqtt-quic":
            raise ValueError("MQTT over QUIC (mqtt-quic://) is not implemented; use mqtt-tcp:// or tls+mqtt-tcp://")
        if not sep or scheme not in SCHEMES:
            raise ValueError(f"{expected}, got {value!r}")
        try:
            host, port = parse_bind(rest.rstrip("/"))
        except ValueError as exc:
            raise ValueError(f"{expected}: {exc}") from None
        if port == 0:
            raise ValueError(f"port must be 1..65535, got {value!r}")
        return host, port, SCHEMES[scheme]


@dataclass(frozen=True)
class MaybeQos(Int):
    """A QoS 0..2, or None: the message's own."""

    low: int | None = 0
    high: int | None = 2

    def check(self, value):
        if value is not None:
            super().check(value)


@dataclass(frozen=True)
class Payload(Kind):
    """A string, held as its UTF-8 bytes."""

    form = "string"

    def convert(self, value):
        return units.to_str(value).encode()

    def check(self, value):
        if not isinstance(value, bytes):
            raise ValueError(f"expected a string, got {describe(value)}")

    def show(self, value):
        return f'"{value.decode()}"'


def properties_key(path: str, form: str, doc: str, aliases: tuple[str, ...] = ()):
    """A field holding a dict of v5 properties (codec names), read by its own reader."""
    spec = Key(path, Structure(form), {}, doc, aliases=aliases, shown_default="none")
    return field(default_factory=dict, metadata={KEY: spec})


SERVER = Key(f"{BRIDGE}.server", Server(), dataclasses.MISSING, "Upstream address; mqtt-quic:// is refused (not implemented).",
             shown_default="required")
ENABLE = Key(f"{BRIDGE}.enable", Bool(), True, "false skips the bridge (its keys unchecked).")
SSL_ENABLE = Key(f"{BRIDGE}.ssl.enable", Bool(), True, "false: no TLS keys (NanoMQ 0.14-0.18's switch).")


# -- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeTls(Block):
    """`ssl { ... }` of a tls+mqtt-tcp:// bridge: how the appliance checks the upstream and proves itself."""

    __section__ = f"{BRIDGE}.ssl"
    cacertfile: str | None = key(f"{BRIDGE}.ssl.cacertfile", PATH, None,
                                 "CA(s) the upstream's certificate must chain to; none: the system store.")
    certfile: str | None = key(f"{BRIDGE}.ssl.certfile", PATH, None, "Client certificate (mutual TLS; needs keyfile).")
    keyfile: str | None = key(f"{BRIDGE}.ssl.keyfile", PATH, None, "Client key (needs certfile).")
    key_password: str | None = key(f"{BRIDGE}.ssl.key_password", Text(optional=True), None,
                                   "Password of an encrypted keyfile (never logged).", repr=False)
    verify_peer: bool = key(f"{BRIDGE}.ssl.verify_peer", Bool(), True,
                            "Check the upstream's certificate and host name; false: neither (a lab only). "
                            "Ours: on by default.")

    def invariants(self) -> None:
        if self.keyfile and not self.certfile:
            raise Invalid("keyfile", "a client key needs certfile too")
        if self.certfile and not self.keyfile:
            raise Invalid("certfile", "a client certificate needs keyfile too")


@dataclass(frozen=True)
class BridgeWill(Block):
    """`will { ... }`: the message the upstream publishes if the bridge's connection dies."""

    __section__ = f"{BRIDGE}.will"
    topic: str = key(f"{BRIDGE}.will.topic", Text(), dataclasses.MISSING, "Will topic (no wildcards).",
                     shown_default="required")
    payload: bytes = key(f"{BRIDGE}.will.payload", Payload(), b"", "Will payload.")
    qos: int = key(f"{BRIDGE}.will.qos", Int(0, 2), 0, "Will QoS.")
    retain: bool = key(f"{BRIDGE}.will.retain", Bool(), False, "Will retain flag.")
    properties: dict = properties_key(
        f"{BRIDGE}.will.properties", "{payload_format_indicator, message_expiry_interval, content_type, "
        "response_topic, correlation_data, will_delay_interval, user_property {}}",
        "v5 will properties (ignored with a warning below proto_ver = 5).")

    def invariants(self) -> None:
        problem = topic_name_problem(self.topic)
        if problem:
            raise Invalid("topic", problem)


@dataclass(frozen=True)
class BridgeForward(Block):
    """One `forwards` entry: local messages matching `local_topic` go upstream."""

    __section__ = f"{BRIDGE}.forwards[]"
    local_topic: str = key(f"{BRIDGE}.forwards[].local_topic", Text(), dataclasses.MISSING,
                           "Local topic filter to forward (the plain list form is this alone).",
                           shown_default="required")
    remote_topic: str = key(f"{BRIDGE}.forwards[].remote_topic", Text(), "",
                            'Topic upstream: "" keeps it, "x/${topic}", a fixed topic, or wildcards filled '
                            "from local_topic's (README, Topic remapping).")
    qos: int | None = key(f"{BRIDGE}.forwards[].qos", MaybeQos(), None, "QoS upstream.",
                          shown_default="the message's")
    retain: int = key(f"{BRIDGE}.forwards[].retain", Int(0, 2), RETAIN_KEEP,
                      "0 / 1 set the retain flag upstream, 2 keeps the message's.")
    prefix: str = key(f"{BRIDGE}.forwards[].prefix", Text(), "", "Prepended to the remapped topic, as written.")
    suffix: str = key(f"{BRIDGE}.forwards[].suffix", Text(), "", "Appended to the remapped topic, as written.")
    index: int = 0  # position in the list, for messages

    def invariants(self) -> None:
        problem = topic_filter_problem(self.local_topic)
        if problem:
            raise Invalid("local_topic", problem)
        problem = remap_problem(self.local_topic, self.remote_topic, self.prefix, self.suffix)
        if problem:
            raise Invalid("remote_topic", problem)


@dataclass(frozen=True)
class BridgeSubscription(Block):
    """One `subscription` entry: the bridge subscribes upstream and republishes locally."""

    __section__ = f"{BRIDGE}.subscription[]"
    remote_topic: str = key(f"{BRIDGE}.subscription[].remote_topic", Text(), dataclasses.MISSING,
                            "Upstream topic filter to subscribe (topic: NanoMQ's older name).",
                            aliases=("topic",), shown_default="required")
    qos: int = key(f"{BRIDGE}.subscription[].qos", Int(0, 2), 0, "QoS of the subscription upstream.")
    local_topic: str = key(f"{BRIDGE}.subscription[].local_topic", Text(), "",
                           "Topic published locally; the same forms as forwards' remote_topic.")
    retain: int = key(f"{BRIDGE}.subscription[].retain", Int(0, 2), RETAIN_KEEP,
                      "0 / 1 set the retain flag locally, 2 keeps the upstream's.")
    retain_as_published: bool = key(f"{BRIDGE}.subscription[].retain_as_published", Bool(), False,
                                    "v5 subscription option.")
    retain_handling: int = key(f"{BRIDGE}.subscription[].retain_handling", Int(0, 2), 0,
                               "v5 subscription option: 0 send retained, 1 only if new, 2 never.")
    prefix: str = key(f"{BRIDGE}.subscription[].prefix", Text(), "", "Prepended to the local topic, as written.")
    suffix: str = key(f"{BRIDGE}.subscription[].suffix", Text(), "", "Appended to the local topic, as written.")
    index: int = 0

    def invariants(self) -> None:
        problem = topic_filter_problem(self.remote_topic)
        if problem:
            raise Invalid("remote_topic", problem)
        problem = remap_problem(self.remote_topic, self.local_topic, self.prefix, self.suffix)
        if problem:
            raise Invalid("local_topic", problem)


@dataclass(frozen=True)
class BridgeConfig(Block):
    """One `bridges.mqtt.<name> { ... }` block."""

    __section__ = BRIDGE
    __not_implemented__ = NOT_IMPLEMENTED_KEYS
    name: str = ""
    host: str = ""  # from server
    port: int = 0
    tls: BridgeTls | None = None  # set for tls+mqtt-tcp://
    proto_ver: int = key(f"{BRIDGE}.proto_ver", Int(3, 5), 4, "MQTT 3.1, 3.1.1 or 5.0.")
    clientid: str = key(f"{BRIDGE}.clientid", Text(), "",
                        "Client id upstream; stable, so clean_start = false finds its session (NanoMQ: random).",
                        shown_default="<hostname>-bridge-<name>")
    username: str | None = key(f"{BRIDGE}.username", Text(optional=True), None, "User name upstream.")
    password: str | None = key(f"{BRIDGE}.password", Text(optional=True), None,
                               "Password upstream (never logged).", repr=False)
    clean_start: bool = key(f"{BRIDGE}.clean_start", Bool(), True, "Clean start / clean session upstream.")
    keepalive: float = key(f"{BRIDGE}.keepalive", Duration(positive=False, high=65535.0), 60.0,
                           "Keep alive: PINGREQ when quiet; dropped after 1.5x without a packet; 0: off.")
    will: BridgeWill | None = None
    forwards: tuple[BridgeForward, ...] = key(
        f"{BRIDGE}.forwards", Structure("[filter or {local_topic, remote_topic, qos, retain, prefix, suffix}]"), (),
        "Local messages to publish upstream, first match wins (keys below).")
    subscription: tuple[BridgeSubscription, ...] = key(
        f"{BRIDGE}.subscription", Structure("[{remote_topic, local_topic, qos, retain, ...}]"), (),
        "Upstream filters to subscribe and publish locally, first match remaps (keys below).")
    max_parallel_processes: int = key(f"{BRIDGE}.max_parallel_processes", Int(1), 2,
                                      "Accepted; no effect (one writer and one reader greenlet per bridge).")
    max_send_queue_len: int = key(f"{BRIDGE}.max_send_queue_len", Int(1, 10_000_000), 10_000,
                                  "Messages waiting for the upstream, unacknowledged ones included; the oldest "
                                  "is dropped beyond it (with the disk queue: sqlite.disk_cache_size too).")
    max_recv_queue_len: int = key(f"{BRIDGE}.max_recv_queue_len", Int(1), 1024,
                                  "v5: the Receive Maximum announced upstream (unless conn_properties sets it).")
    resend_interval: float = key(f"{BRIDGE}.resend_interval", Duration(0.001, "milliseconds"), 5.0,
                                 "v3/v4: how often unacknowledged QoS 1/2 messages are looked at for a resend.")
    resend_wait: float = key(f"{BRIDGE}.resend_wait", Duration(0.001, "milliseconds"), 3.0,
                             "v3/v4: a QoS 1/2 message unacknowledged this long is sent again with DUP.")
    connect_properties: dict = properties_key(
        f"{BRIDGE}.conn_properties", "{maximum_packet_size, receive_maximum, session_expiry_interval, "
        "request_problem_information, request_response_information, user_property {}}",
        "v5 CONNECT properties; topic_alias_maximum is not implemented.",
        aliases=("conn_property", "connect_properties"))
    subscription_properties: dict = properties_key(
        f"{BRIDGE}.sub_properties", "{identifier, user_property {}}", "v5 SUBSCRIBE properties.",
        aliases=("subscription_properties",))
    backoff_min: float = key(f"{BRIDGE}.backoff_min", Duration(), 1.0,
                             "First reconnect delay (capped exponential backoff, full jitter).", origin=OURS)
    backoff_max: float = key(f"{BRIDGE}.backoff_max", Duration(), 30.0,
                             "Largest reconnect delay, at least backoff_min.", origin=OURS)
    connect_timeout: float = key(f"{BRIDGE}.connect_timeout", Duration(), 10.0,
                                 "TCP, TLS and CONNACK must complete within it.", origin=OURS)

    def invariants(self) -> None:
        if self.proto_ver == 3 and len(self.clientid) > 23:
            raise Invalid("clientid", f"MQTT 3.1 allows at most 23 characters, got {len(self.clientid)}")
        if self.backoff_max < self.backoff_min:
            raise Invalid("backoff_max", f"must be at least backoff_min ({self.backoff_min:g}s)")


# -- the reader ---------------------------------------------------------------------------------


def read_bridges(root: Section) -> tuple[BridgeConfig, ...]:
    """Every enabled `bridges.mqtt.<name>`; other bridge kinds are a warning each."""
    bridges = root.child("bridges")
    if bridges is None:
        return ()
    bridges.not_implemented("aws", "nng", "quic", "zmq")
    mqtt = bridges.child("mqtt")
    found: list[BridgeConfig] = []
    if mqtt is not None:
        mqtt.not_implemented("cache", note="the sqlite block configures the disk queue")
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
    if not section.get("enable", True, ENABLE.parse):
        section.seen.update(section.keys())
        return None
    if not section.has("server"):
        raise section.fail(None, f'a bridge needs server = "mqtt-tcp://host:1883" (expected {Server.form})')
    host, port, use_tls = section.get("server", None, SERVER.parse)
    proto_ver = section.read(key_of(BridgeConfig, "proto_ver"), BRIDGE)
    proto_ver = key_of(BridgeConfig, "proto_ver").default if proto_ver is MISSING else proto_ver
    clientid = section.read(key_of(BridgeConfig, "clientid"), BRIDGE)
    config = read_block(
        section, BridgeConfig, name=name, host=host, port=port,
        clientid=clientid if clientid not in (MISSING, "") else _default_clientid(name, proto_ver),
        tls=_read_tls(section, use_tls),
        will=_read_will(section, proto_ver),
        forwards=_read_forwards(section),
        subscription=_read_subscriptions(section),
        connect_properties=_read_connect_properties(section, proto_ver),
        subscription_properties=_read_subscription_properties(section, proto_ver),
    )
    if not config.forwards and not config.subscription:
        section.ctx.warn(section.path, f"{format_path(section.path)}: neither forwards nor subscription; "
                                       "the bridge connects but moves nothing")
    return config


def _default_clientid(name: str, proto_ver: int) -> str:
    # Stable across restarts, so clean_start = false finds its session upstream again.
    clientid = f"{socket.gethostname()}-bridge-{name}"
    return clientid[:23] if proto_ver == 3 else clientid


def _read_tls(section: Section, use_tls: bool) -> BridgeTls | None:
    tls = section.child("ssl")
    if tls is None:
        return BridgeTls() if use_tls else None
    if not tls.get("enable", True, SSL_ENABLE.parse) or not use_tls:
        if not use_tls:
            section.ctx.warn(tls.path, f"{format_path(tls.path)} is only used with a tls+mqtt-tcp:// server "
                                       "(ignored)")
        tls.seen.update(tls.keys())
        return None
    config = read_block(tls, BridgeTls)
    tls.finish()
    for name in ("cacertfile", "certfile", "keyfile"):
        check_readable(tls, name, getattr(config, name))
    return config


def _read_will(section: Section, proto_ver: int) -> BridgeWill | None:
    will = section.child("will")
    if will is None:
        return None
    if not will.has("topic"):
        raise will.fail("topic", "a will needs a topic")
    properties = {}
    props = will.child("properties")
    if props is not None:
        if proto_ver == 5:
            properties = _read_properties(props, _WILL_PROPERTIES)
        else:
            section.ctx.warn(props.path, f"{format_path(props.path)}: will properties need proto_ver = 5 (ignored)")
            props.seen.update(props.keys())
    config = read_block(will, BridgeWill, properties=properties)
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
            value = section.get(key, None, Int(low, high).parse)
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
            try:
                found.append(BridgeForward(local_topic=item, index=index))
            except Invalid as exc:
                raise section.ctx.error(path, str(exc)) from None
            continue
        if not isinstance(item, ConfigTree):
            raise section.ctx.error(path, f"expected a topic filter or {{ local_topic, remote_topic, qos }}, "
                                          f"got {describe(item)}")
        entry = Section(section.ctx, item, path)
        if not entry.has("local_topic"):
            raise entry.fail(None, "a forward needs local_topic (the local topic filter to forward)")
        forward = read_block(entry, BridgeForward, index=index)
        entry.finish()
        found.append(forward)
    return tuple(found)


def _read_subscriptions(section: Section) -> tuple[BridgeSubscription, ...]:
    found = []
    for index, item in enumerate(_entries(section, "subscription")):
        path = section.at("subscription") + (index,)
        if not isinstance(item, ConfigTree):
            raise section.ctx.error(path, f"expected {{ remote_topic, qos, local_topic }}, got {describe(item)}")
        entry = Section(section.ctx, item, path)
        if not entry.has("remote_topic") and not entry.has("topic"):
            raise entry.fail(None, "a subscription needs remote_topic (the upstream topic filter)")
        subscription = read_block(entry, BridgeSubscription, index=index)
        entry.finish()
        found.append(subscription)
    return tuple(found)
