"""listeners, mqtt, log and http_server blocks: NanoMQ keys, NanoMQ meanings, our defaults."""

import pytest

from appliance.config import ConfigError, load_config
from appliance.config.model import HttpServerConfig, ListenerConfig, LogConfig, MqttConfig


def load(tmp_path, text, env=None):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def test_no_listeners_block_listens_on_all_interfaces_port_1883(tmp_path):
    loaded = load(tmp_path, "mqtt.max_mqueue_len = 10\n")
    assert loaded.config.listeners == (ListenerConfig("tcp", "0.0.0.0", 1883),)
    assert loaded.warnings == []


def test_tcp_listener_bind_is_host_and_port(tmp_path):
    config = load(tmp_path, 'listeners.tcp {\n  bind = "127.0.0.1:2883"\n}\n').config
    assert config.listeners == (ListenerConfig("tcp", "127.0.0.1", 2883),)


def test_named_tcp_listeners_are_named_tcp_dot_name_and_accept_ipv6(tmp_path):
    config = load(
        tmp_path,
        'listeners.tcp { bind = "0.0.0.0:1883" }\n'
        'listeners.tcp.local { bind = "127.0.0.1:1884" }\n'
        'listeners.tcp.v6 { bind = "[::]:1885" }\n',
    ).config
    assert config.listeners == (
        ListenerConfig("tcp", "0.0.0.0", 1883),
        ListenerConfig("tcp.local", "127.0.0.1", 1884),
        ListenerConfig("tcp.v6", "::", 1885),
    )


def test_only_named_listeners_means_no_unnamed_one(tmp_path):
    config = load(tmp_path, 'listeners.tcp.a { bind = "127.0.0.1:0" }\n').config
    assert config.listeners == (ListenerConfig("tcp.a", "127.0.0.1", 0),)


def test_listener_with_enable_false_is_not_started(tmp_path):
    config = load(
        tmp_path,
        'listeners.tcp { bind = "0.0.0.0:1883", enable = false }\n'
        'listeners.tcp.b { bind = "127.0.0.1:1884" }\n',
    ).config
    assert [listener.name for listener in config.listeners] == ["tcp.b"]


@pytest.mark.parametrize(
    "bind, problem",
    [
        ('"0.0.0.0:65536"', "port must be 0..65535"),
        ('"0.0.0.0"', "host:port"),
        ('":::1883"', "IPv6 address needs brackets"),
        ('"not a host:1883"', "IP address or host name"),
        ("1883", "host:port"),
    ],
)
def test_bad_listener_bind_is_an_error_naming_the_key(tmp_path, bind, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"\nlisteners.tcp {{\n  bind = {bind}\n}}\n")
    assert str(error.value).startswith(f"{tmp_path / 'nanomq.conf'}:3: listeners.tcp.bind: ")
    assert problem in str(error.value)


def test_two_listeners_on_one_address_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="listeners.tcp.b.bind: same address as listener tcp"):
        load(tmp_path, 'listeners.tcp { bind = "0.0.0.0:1883" }\nlisteners.tcp.b { bind = "0.0.0.0:1883" }\n')


def test_unimplemented_listener_kinds_warn_once_each(tmp_path):
    loaded = load(
        tmp_path,
        'listeners.tcp { bind = "0.0.0.0:1883" }\n'
        'listeners.quic { bind = "0.0.0.0:14567" }\n',
    )
    assert loaded.warnings == [
        f"{tmp_path / 'nanomq.conf'}:2: listeners.quic is not implemented (ignored)",
    ]


def test_mqtt_block_sets_every_supported_key(tmp_path):
    config = load(
        tmp_path,
        """mqtt {
            max_packet_size = 256KB
            max_mqueue_len = 100
            retry_interval = 3s
            keepalive_multiplier = 1.5
            max_inflight_window = 64
            property_size = 8
            max_topic_alias = 10
            connect_timeout = 2s
        }""",
    ).config
    assert config.mqtt == MqttConfig(
        max_packet_size=256 * 1024,
        max_mqueue_len=100,
        retry_interval=3.0,
        keepalive_multiplier=1.5,
        max_inflight_window=64,
        property_size=8,
        max_topic_alias=10,
        connect_timeout=2.0,
    )


def test_absent_mqtt_keys_keep_the_safe_defaults(tmp_path):
    assert load(tmp_path, "mqtt { property_size = 4 }").config.mqtt == MqttConfig(property_size=4)


def test_nanomq_mqtt_keys_we_do_not_implement_warn_by_full_path(tmp_path):
    loaded = load(tmp_path, "mqtt {\n  max_awaiting_rel = 10s\n  await_rel_timeout = 10s\n}\n")
    assert loaded.warnings == [
        f"{tmp_path / 'nanomq.conf'}:2: mqtt.max_awaiting_rel is not implemented (ignored)",
        f"{tmp_path / 'nanomq.conf'}:3: mqtt.await_rel_timeout is not implemented (ignored)",
    ]


def test_nanomq_260mb_packet_limit_is_accepted_as_nanomq_ceiling(tmp_path):
    config = load(tmp_path, "mqtt.max_packet_size = 260MB").config
    assert config.mqtt.max_packet_size == 260 * 1024 * 1024


@pytest.mark.parametrize(
    "line, problem",
    [
        ("max_packet_size = 0", "must be between 1B and 260MB, got 0B"),
        ("max_packet_size = 1TB", "expected a size"),
        ("max_mqueue_len = 0", "must be 1 or more"),
        ("max_mqueue_len = lots", "expected an integer"),
        ("retry_interval = 0s", "must be greater than 0"),
        ("keepalive_multiplier = 0.5", "must be greater than 0.5"),
        ("max_inflight_window = 65536", "must be between 1 and 65535"),
        ("max_topic_alias = -1", "must be between 0 and 65535"),
        ("property_size = [1]", "expected an integer, got a list"),
    ],
)
def test_bad_mqtt_values_are_errors_naming_key_and_expected_form(tmp_path, line, problem):
    key = line.split(" =")[0]
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"mqtt {{\n  {line}\n}}\n")
    assert str(error.value).startswith(f"{tmp_path / 'nanomq.conf'}:2: mqtt.{key}: ")
    assert problem in str(error.value)


def test_log_block_sets_targets_level_file_and_rotation(tmp_path):
    config = load(
        tmp_path,
        'log {\n to = [file, console]\n level = debug\n dir = "/var/log"\n file = "b.log"\n'
        " rotation { size = 1MB, count = 3 }\n}\n",
    ).config
    assert config.log.to == ("file", "console")
    assert (config.log.level, config.log.dir, config.log.file) == ("debug", "/var/log", "b.log")
    assert (config.log.rotation.size, config.log.rotation.count) == (1024 * 1024, 3)


def test_log_to_accepts_a_single_string_and_levels_in_any_case(tmp_path):
    config = load(tmp_path, "log { to = console, level = ERROR }").config
    assert (config.log.to, config.log.level) == (("console",), "error")


def test_log_defaults_are_console_at_warn(tmp_path):
    assert load(tmp_path, "").config.log == LogConfig()
    assert LogConfig().to == ("console",) and LogConfig().level == "warn"


def test_log_to_syslog_warns_and_keeps_the_other_targets(tmp_path):
    loaded = load(tmp_path, "log { to = [syslog, console] }")
    assert loaded.config.log.to == ("console",)
    assert loaded.warnings == [f"{tmp_path / 'nanomq.conf'}:1: log.to: syslog is not implemented (ignored)"]


@pytest.mark.parametrize(
    "text, path, problem",
    [
        ("log {\n level = loud\n}", "log.level", "expected one of trace, debug, info, warn, error, fatal"),
        ("log {\n to = [console, printer]\n}", "log.to[1]", "expected console, file"),
        ("log {\n rotation.count = 0\n}", "log.rotation.count", "must be 1 or more"),
    ],
)
def test_bad_log_values_are_errors(tmp_path, text, path, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert f":2: {path}: {problem}" in str(error.value)


def test_http_server_block_sets_port_bind_credentials_and_auth_type(tmp_path):
    config = load(
        tmp_path,
        'http_server {\n port = 9090\n bind = "127.0.0.1"\n username = ops\n'
        " password = 123456\n auth_type = no_auth\n}\n",
    ).config
    assert config.http_server == HttpServerConfig(
        port=9090, bind="127.0.0.1", username="ops", password="123456", auth_type="no_auth"
    )


def test_no_http_server_block_means_no_http_server_as_in_nanomq(tmp_path):
    assert load(tmp_path, "").config.http_server is None
    assert load(tmp_path, "http_server {}").config.http_server == HttpServerConfig(port=8081)


def test_http_server_enable_false_turns_it_off_without_warnings(tmp_path):
    loaded = load(tmp_path, "http_server { enable = false, port = 1, limit_conn = 2 }")
    assert loaded.config.http_server is None
    assert loaded.warnings == []


def test_http_server_keys_we_ignore_warn(tmp_path):
    loaded = load(tmp_path, "http_server {\n limit_conn = 32\n jwt { public.keyfile = x }\n}\n")
    assert loaded.warnings == [
        f"{tmp_path / 'nanomq.conf'}:2: http_server.limit_conn is not implemented (ignored)",
        f"{tmp_path / 'nanomq.conf'}:3: http_server.jwt is not implemented (ignored)",
    ]


def test_http_server_jwt_auth_is_refused_rather_than_weakened(tmp_path):
    with pytest.raises(ConfigError, match="http_server.auth_type: jwt is not implemented"):
        load(tmp_path, "http_server { auth_type = jwt }")


def test_http_server_port_out_of_range_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r":2: http_server.port: must be between 0 and 65535, got 65536"):
        load(tmp_path, "http_server {\n port = 65536\n}")


def test_http_server_password_never_appears_in_the_config_repr(tmp_path):
    config = load(tmp_path, "http_server { password = s3cr3t-value }").config
    assert "s3cr3t-value" not in repr(config)


def test_unimplemented_blocks_and_unknown_keys_warn_once_each_with_full_path(tmp_path):
    loaded = load(
        tmp_path,
        "system { parallel = 0 }\n"
        "authorization {\n sources = []\n}\n"
        "bridges.aws.c1 { server = \"127.0.0.1:8883\" }\n"
        "mqtt {\n foo = 1\n}\n"
        "log.rotation.bar = 2\n"
        "frobnicate = yes\n",
    )
    conf = tmp_path / "nanomq.conf"
    assert sorted(loaded.warnings) == sorted([
        f"{conf}:1: system is not implemented (ignored)",
        f"{conf}:2: authorization is not implemented (ignored)",
        f"{conf}:5: bridges.aws is not implemented (ignored)",
        f"{conf}:7: unknown key mqtt.foo (ignored)",
        f"{conf}:9: unknown key log.rotation.bar (ignored)",
        f"{conf}:10: unknown key frobnicate (ignored)",
    ])


def test_unknown_key_in_a_named_listener_warns_with_its_path(tmp_path):
    loaded = load(tmp_path, 'listeners.tcp.a {\n  bind = "127.0.0.1:1"\n  backlog = 5\n}\n')
    assert loaded.warnings == [f"{tmp_path / 'nanomq.conf'}:3: unknown key listeners.tcp.a.backlog (ignored)"]


def test_pre_019_mqtt_session_block_warns_with_the_new_key_names(tmp_path):
    loaded = load(tmp_path, "mqtt.session {\n  msq_len = 64\n}\n")
    assert len(loaded.warnings) == 1
    assert "mqtt.session is not implemented" in loaded.warnings[0]
    assert "msq_len is max_mqueue_len" in loaded.warnings[0]


def test_tcp_listener_without_bind_keeps_nanomqs_default_address(tmp_path):
    config = load(tmp_path, "listeners.tcp {}\n").config
    assert config.listeners == (ListenerConfig("tcp", "0.0.0.0", 1883),)


def test_named_listener_without_bind_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r":1: listeners.tcp.a: a listener needs bind"):
        load(tmp_path, "listeners.tcp.a { enable = true }\n")


def test_http_server_ip_addr_is_nanomqs_bind_address_and_bind_an_alias(tmp_path):
    assert load(tmp_path, 'http_server { ip_addr = "127.0.0.1" }').config.http_server.bind == "127.0.0.1"
    assert load(tmp_path, 'http_server { bind = "::1" }').config.http_server.bind == "::1"
    with pytest.raises(ConfigError, match=r":1: http_server.bind: write either ip_addr or bind"):
        load(tmp_path, 'http_server { ip_addr = "127.0.0.1", bind = "0.0.0.0" }')
    with pytest.raises(ConfigError, match=r"http_server.ip_addr: '300.0.0.1' is not an IPv4 address"):
        load(tmp_path, 'http_server { ip_addr = "300.0.0.1" }')


def test_listener_bind_accepts_nanomqs_url_form_as_the_environment_does(tmp_path):
    config = load(tmp_path, 'listeners.tcp.bind = "nmq-tcp://127.0.0.1:2883"').config
    assert config.listeners == (ListenerConfig("tcp", "127.0.0.1", 2883),)
    with pytest.raises(ConfigError, match='expected "nmq-tcp://host:port"'):
        load(tmp_path, 'listeners.tcp.bind = "ws://127.0.0.1:2883"')
