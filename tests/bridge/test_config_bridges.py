"""NanoMQ's bridges.mqtt block read key for key; wrong values are one line with file, line
and key; unimplemented keys warn by path; the CLI exits 2 without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance.config import ConfigError, load_config, load_config_text
from tests.conftest import ROOT

NANOMQ_EXAMPLE = """
bridges.mqtt.emqx1 = {
  server = "mqtt-tcp://127.0.0.1:1883"
  proto_ver = 5
  clientid = "bridge_client"
  keepalive = "60s"
  clean_start = false
  username = "username"
  password = "passwd"
  will = {
    topic = "will_topic"
    qos = 1
    retain = false
    payload = "will_message"
    properties = {
      payload_format_indicator = 0
      message_expiry_interval = 0
      content_type = ""
      response_topic = ""
      correlation_data = ""
      will_delay_interval = 0
      user_property = { key1 = "value1", key2 = "value2" }
    }
  }
  forwards = [
    { remote_topic = "fwd/topic1", local_topic = "topic1", suffix = "/emqx" },
    { remote_topic = "fwd/topic2", local_topic = "topic2", prefix = "emqx/" }
  ]
  subscription = [
    { remote_topic = "cmd/topic1", local_topic = "topic3", qos = 1, retain = 2, suffix = "/emqx" },
    { remote_topic = "cmd/topic2", local_topic = "topic4", qos = 2, retain_as_published = true, retain_handling = 1 }
  ]
  conn_properties = { maximum_packet_size = 65536, receive_maximum = 100, session_expiry_interval = 60,
                      request_problem_information = 1, request_response_information = 0,
                      user_property = { a = "b" } }
  sub_properties = { identifier = 7, user_property = { c = "d" } }
  max_parallel_processes = 2
  max_send_queue_len = 32
  max_recv_queue_len = 128
  resend_interval = 5000
  resend_wait = 3000
}
"""


def test_nanomq_documented_example_loads_key_for_key():
    loaded = load_config_text(NANOMQ_EXAMPLE, env={})
    assert loaded.warnings == []
    (bridge,) = loaded.config.bridges
    assert (bridge.name, bridge.host, bridge.port, bridge.tls) == ("emqx1", "127.0.0.1", 1883, None)
    assert (bridge.proto_ver, bridge.clientid, bridge.keepalive, bridge.clean_start) == (5, "bridge_client", 60, False)
    assert (bridge.username, bridge.password) == ("username", "passwd")
    assert bridge.will.topic == "will_topic" and bridge.will.payload == b"will_message" and bridge.will.qos == 1
    assert bridge.will.properties == {"user_property": [("key1", "value1"), ("key2", "value2")]}
    assert [(f.local_topic, f.remote_topic, f.prefix, f.suffix) for f in bridge.forwards] == [
        ("topic1", "fwd/topic1", "", "/emqx"), ("topic2", "fwd/topic2", "emqx/", "")]
    first, second = bridge.subscription
    assert (first.remote_topic, first.local_topic, first.qos, first.retain, first.suffix) == (
        "cmd/topic1", "topic3", 1, 2, "/emqx")
    assert (second.qos, second.retain_as_published, second.retain_handling) == (2, True, 1)
    assert bridge.connect_properties == {"maximum_packet_size": 65536, "receive_maximum": 100,
                                         "session_expiry_interval": 60, "request_problem_information": 1,
                                         "request_response_information": 0, "user_property": [("a", "b")]}
    assert bridge.subscription_properties == {"subscription_identifier": 7, "user_property": [("c", "d")]}
    assert (bridge.max_send_queue_len, bridge.max_recv_queue_len) == (32, 128)
    assert (bridge.resend_interval, bridge.resend_wait) == (5.0, 3.0)  # milliseconds in the file
    assert "passwd" not in repr(loaded.config)


def test_plain_string_forwards_and_older_topic_key_and_tls_server():
    loaded = load_config_text("""
bridges.mqtt.a { server = "tls+mqtt-tcp://broker.example.com:8883", forwards = ["forward1/#", "forward2/#"],
                 subscription = [ { topic = "recv/topic1", qos = 1 } ] }
bridges.mqtt.b { server = "mqtt-tcp://[::1]:1884", proto_ver = 3, forwards = ["x"] }
""", env={})
    a, b = loaded.config.bridges
    assert [f.local_topic for f in a.forwards] == ["forward1/#", "forward2/#"]
    assert a.forwards[0].remote_topic == "" and a.forwards[0].qos is None
    assert a.subscription[0].remote_topic == "recv/topic1"
    assert a.tls is not None and a.tls.verify_peer  # the system trust store, verified
    assert (b.host, b.port, b.proto_ver) == ("::1", 1884, 3)
    assert len(b.clientid) <= 23  # MQTT 3.1's limit for the generated default


def test_unimplemented_keys_and_blocks_warn_by_path():
    loaded = load_config_text("""
bridges.mqtt.e1 {
  server = "mqtt-tcp://127.0.0.1:1883"
  forwards = ["a/#"]
  transparent = true
  hybrid_bridging = false
  quic_keepalive = 120s
  tcp { nodelay = true }
  conn_properties { topic_alias_maximum = 10 }
  proto_ver = 5
}
bridges.mqtt.cache { disk_cache_size = 102400 }
bridges.aws.c1 { server = "127.0.0.1:8883" }
""", source="n.conf", env={})
    text = "\n".join(loaded.warnings)
    for path in ("bridges.mqtt.e1.transparent", "bridges.mqtt.e1.hybrid_bridging", "bridges.mqtt.e1.quic_keepalive",
                 "bridges.mqtt.e1.tcp", "bridges.mqtt.e1.conn_properties.topic_alias_maximum",
                 "bridges.mqtt.cache", "bridges.aws"):
        assert f"{path} is not implemented" in text
    assert len(loaded.config.bridges) == 1


@pytest.mark.parametrize("body, line, path, problem", [
    ('server = "mqtt-quic://1.2.3.4:14567"', 3, "bridges.mqtt.x.server", "QUIC"),
    ('server = "http://1.2.3.4:1883"', 3, "bridges.mqtt.x.server", "mqtt-tcp://host:port"),
    ('server = "mqtt-tcp://1.2.3.4"', 3, "bridges.mqtt.x.server", "host:port"),
    ('server = "mqtt-tcp://h:1883"\n proto_ver = 6', 4, "bridges.mqtt.x.proto_ver", "between 3 and 5"),
    ('server = "mqtt-tcp://h:1883"\n forwards = [ { remote_topic = "x" } ]', 4, "bridges.mqtt.x.forwards[0]",
     "needs local_topic"),
    ('server = "mqtt-tcp://h:1883"\n forwards = [ "a/#/b" ]', 4, "bridges.mqtt.x.forwards[0]", "whole last level"),
    ('server = "mqtt-tcp://h:1883"\n forwards = [ { local_topic = "a/b", remote_topic = "c/#" } ]', 4,
     "bridges.mqtt.x.forwards[0].remote_topic", "has no '#'"),
    ('server = "mqtt-tcp://h:1883"\n subscription = [ { remote_topic = "a/+", qos = 3 } ]', 4,
     "bridges.mqtt.x.subscription[0].qos", "between 0 and 2"),
    ('server = "mqtt-tcp://h:1883"\n max_send_queue_len = 0', 4, "bridges.mqtt.x.max_send_queue_len", "between 1 and"),
    ('server = "tls+mqtt-tcp://h:8883"\n ssl { cacertfile = "/nonexistent/ca.pem" }', 4,
     "bridges.mqtt.x.ssl.cacertfile", "cannot read"),
])
def test_bad_values_are_one_line_with_file_line_and_key(tmp_path, body, line, path, problem):
    conf = tmp_path / "nanomq.conf"
    conf.write_text(f"bridges.mqtt.x {{\n # comment\n {body}\n forwards = [\"z\"]\n}}\n"
                    if "forwards" not in body and "subscription" not in body else
                    f"bridges.mqtt.x {{\n # comment\n {body}\n}}\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(conf), env={})
    assert error.value.path == path
    assert error.value.line == line
    assert problem in error.value.problem
    assert "\n" not in str(error.value)


def test_check_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    conf = tmp_path / "nanomq.conf"
    conf.write_text('bridges.mqtt.x { server = "mqtt-quic://1.2.3.4:14567" }\n')
    result = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--conf", str(conf)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bridges.mqtt.x.server" in result.stderr


def test_shipped_bridge_example_loads_with_zero_warnings_when_uncommented():
    from tests.config.test_config_shipped import SHIPPED, uncomment_block

    loaded = load_config_text(uncomment_block(SHIPPED.read_text(), "bridges.mqtt.emqx1 {"), env={})
    assert loaded.warnings == []
    (bridge,) = loaded.config.bridges
    assert (bridge.port, bridge.forwards[0].remote_topic, bridge.clean_start) == (1883, "fwd/topic1", False)
