"""NanoMQ's environment variables override the file for the keys we support."""

import pytest

from appliance.config import ConfigError, default_config_path, load_config
from appliance.config.model import HttpServerConfig, ListenerConfig

FILE = """
listeners.tcp { bind = "0.0.0.0:1883" }
listeners.tcp.local { bind = "127.0.0.1:1884" }
mqtt { max_packet_size = 1MB, max_mqueue_len = 100, retry_interval = 10s, property_size = 32 }
log { to = [console], level = warn, dir = "/tmp", file = "a.log", rotation { size = 10MB, count = 5 } }
http_server { port = 8081, username = admin, password = public }
"""


def load(tmp_path, env, text=FILE):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return load_config(str(path), env=env)


def test_broker_url_replaces_the_tcp_listener_bind_and_keeps_named_ones(tmp_path):
    config = load(tmp_path, {"NANOMQ_BROKER_URL": "nmq-tcp://127.0.0.1:2883"}).config
    assert config.listeners == (
        ListenerConfig("tcp", "127.0.0.1", 2883),
        ListenerConfig("tcp.local", "127.0.0.1", 1884),
    )


def test_broker_url_accepts_ipv6(tmp_path):
    config = load(tmp_path, {"NANOMQ_BROKER_URL": "nmq-tcp://[::]:1883"}, text="").config
    assert config.listeners == (ListenerConfig("tcp", "::", 1883),)


def test_broker_url_adds_the_tcp_listener_when_the_file_has_only_named_ones(tmp_path):
    config = load(
        tmp_path, {"NANOMQ_BROKER_URL": "nmq-tcp://0.0.0.0:1883"}, text='listeners.tcp.a { bind = "127.0.0.1:1" }'
    ).config
    assert [listener.name for listener in config.listeners] == ["tcp", "tcp.a"]


def test_tcp_enable_false_drops_the_tcp_listener(tmp_path):
    config = load(tmp_path, {"NANOMQ_TCP_ENABLE": "false"}).config
    assert [listener.name for listener in config.listeners] == ["tcp.local"]


def test_mqtt_variables_override_the_file(tmp_path):
    mqtt = load(
        tmp_path,
        {
            "NANOMQ_MAX_PACKET_SIZE": "2048",
            "NANOMQ_MSQ_LEN": "7",
            "NANOMQ_QOS_DURATION": "3",
            "NANOMQ_PROPERTY_SIZE": "9",
        },
    ).config.mqtt
    assert (mqtt.max_packet_size, mqtt.max_mqueue_len, mqtt.retry_interval, mqtt.property_size) == (2048, 7, 3.0, 9)


def test_size_and_duration_variables_take_units_too(tmp_path):
    mqtt = load(tmp_path, {"NANOMQ_MAX_PACKET_SIZE": "64KB", "NANOMQ_QOS_DURATION": "500ms"}).config.mqtt
    assert (mqtt.max_packet_size, mqtt.retry_interval) == (64 * 1024, 0.5)


def test_log_variables_override_the_file(tmp_path):
    log = load(
        tmp_path,
        {
            "NANOMQ_LOG_TO": "file|console",
            "NANOMQ_LOG_LEVEL": "DEBUG",
            "NANOMQ_LOG_DIR": str(tmp_path),
            "NANOMQ_LOG_FILE": "b.log",
            "NANOMQ_LOG_ROTATION_SIZE": "1MB",
            "NANOMQ_LOG_ROTATION_COUNT": "2",
        },
    ).config.log
    assert log.to == ("file", "console")
    assert (log.level, log.dir, log.file) == ("debug", str(tmp_path), "b.log")
    assert (log.rotation.size, log.rotation.count) == (1024 * 1024, 2)


def test_http_server_variables_override_the_file(tmp_path):
    http = load(
        tmp_path,
        {
            "NANOMQ_HTTP_SERVER_PORT": "9000",
            "NANOMQ_HTTP_SERVER_USERNAME": "ops",
            "NANOMQ_HTTP_SERVER_PASSWORD": "hunter2",
            "NANOMQ_HTTP_SERVER_URL": "127.0.0.1",
            "NANOMQ_HTTP_SERVER_AUTH_TYPE": "no_auth",
        },
    ).config.http_server
    assert http == HttpServerConfig(port=9000, bind="127.0.0.1", username="ops", password="hunter2", auth_type="no_auth")


def test_http_server_enable_switches_the_server_both_ways(tmp_path):
    assert load(tmp_path, {"NANOMQ_HTTP_SERVER_ENABLE": "false"}).config.http_server is None
    config = load(tmp_path, {"NANOMQ_HTTP_SERVER_ENABLE": "true"}, text="http_server.enable = false").config
    assert config.http_server == HttpServerConfig()


@pytest.mark.parametrize(
    "name, value, key, problem",
    [
        ("NANOMQ_BROKER_URL", "ws://0.0.0.0:8083", "listeners.tcp.bind", 'expected "nmq-tcp://host:port"'),
        ("NANOMQ_BROKER_URL", "nmq-tcp://0.0.0.0", "listeners.tcp.bind", "host:port"),
        ("NANOMQ_MSQ_LEN", "many", "mqtt.max_mqueue_len", "expected an integer, got 'many'"),
        ("NANOMQ_MSQ_LEN", "0", "mqtt.max_mqueue_len", "must be 1 or more"),
        ("NANOMQ_MAX_PACKET_SIZE", "big", "mqtt.max_packet_size", "expected a size"),
        ("NANOMQ_QOS_DURATION", "soon", "mqtt.retry_interval", "expected a duration"),
        ("NANOMQ_LOG_LEVEL", "loud", "log.level", "expected one of trace, debug"),
        ("NANOMQ_LOG_TO", "printer", "log.to", "expected console, file"),
        ("NANOMQ_HTTP_SERVER_PORT", "70000", "http_server.port", "must be between 0 and 65535"),
        ("NANOMQ_HTTP_SERVER_ENABLE", "maybe", "http_server.enable", "expected true or false"),
        ("NANOMQ_HTTP_SERVER_AUTH_TYPE", "jwt", "http_server.auth_type", "expected basic or no_auth"),
    ],
)
def test_bad_variable_is_an_error_naming_the_variable(tmp_path, name, value, key, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, {name: value})
    assert str(error.value).startswith(f"environment: {name} ({key}): ")
    assert problem in str(error.value)


def test_nanomq_variables_we_do_not_implement_warn_unless_they_turn_a_feature_off(tmp_path):
    loaded = load(
        tmp_path,
        {
            "NANOMQ_TLS_ENABLE": "false",
            "NANOMQ_DAEMON": "true",
            "NANOMQ_PARALLEL": "32",
            "NANOMQ_CONF_PATH": "/etc/nanomq.conf",
            "NANOMQ_BROKR_URL": "typo",
            "PATH": "/usr/bin",
        },
    )
    assert loaded.warnings == [
        "environment: unknown NanoMQ variable NANOMQ_BROKR_URL (ignored)",
        "environment: NANOMQ_DAEMON is not implemented (ignored)",
        "environment: NANOMQ_PARALLEL is not implemented (ignored)",
    ]


def test_environment_is_read_from_the_given_mapping_only(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOMQ_MSQ_LEN", "3")
    assert load(tmp_path, {}).config.mqtt.max_mqueue_len == 100


def test_default_config_path_follows_nanomq_conf_path():
    assert default_config_path({"NANOMQ_CONF_PATH": "/data/nanomq.conf"}) == "/data/nanomq.conf"
    assert default_config_path({}) == "etc/nanomq.conf"


def test_http_server_variables_warn_when_the_server_is_off(tmp_path):
    loaded = load(tmp_path, {"NANOMQ_HTTP_SERVER_PORT": "9000"}, text="http_server.enable = false")
    assert loaded.config.http_server is None
    assert loaded.warnings == ["environment: NANOMQ_HTTP_SERVER_PORT is ignored: the HTTP server is off"]


def test_log_to_syslog_from_the_environment_warns(tmp_path):
    loaded = load(tmp_path, {"NANOMQ_LOG_TO": "syslog|console"})
    assert loaded.config.log.to == ("console",)
    assert loaded.warnings == ["environment: NANOMQ_LOG_TO: syslog is not implemented (ignored)"]


def test_log_dir_from_the_environment_must_exist_when_logging_to_a_file(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, {"NANOMQ_LOG_TO": "file", "NANOMQ_LOG_DIR": "/nonexistent"})
    assert str(error.value) == ("environment: NANOMQ_LOG_DIR (log.dir): /nonexistent does not exist "
                                "(log.to includes file)")


def test_file_and_environment_accept_the_same_max_packet_size(tmp_path):
    for written, accepted in (("260MB", 260 * 1024 * 1024), ("1", 1)):
        assert load(tmp_path, {}, text=f"mqtt.max_packet_size = {written}").config.mqtt.max_packet_size == accepted
        assert load(tmp_path, {"NANOMQ_MAX_PACKET_SIZE": written}, text="").config.mqtt.max_packet_size == accepted
    for refused in ("261MB", "0"):
        with pytest.raises(ConfigError, match="mqtt.max_packet_size: must be between 1B and 260MB"):
            load(tmp_path, {}, text=f"mqtt.max_packet_size = {refused}")
        with pytest.raises(ConfigError, match=r"NANOMQ_MAX_PACKET_SIZE \(mqtt.max_packet_size\): must be between"):
            load(tmp_path, {"NANOMQ_MAX_PACKET_SIZE": refused}, text="")


def test_every_variable_accepts_exactly_what_its_key_accepts_in_the_file(tmp_path):
    # For each declared key with a variable: the same text written in the file (where pyhocon
    # types it) and in the environment gives the same Config, or is refused by both.
    from appliance.config import table
    from appliance.config.keys import Host, Text

    samples = ["0", "1", "-1", "2.5", "70000", "abc", "10s", "500ms", "1KB", "261MB", "true", "off",
               "console", "file|console", "WARN", "no_auth", "jwt", "127.0.0.1", "999.1.1.1"]
    compared = 0
    for spec in table():
        if not spec.env or "[" in spec.path or spec.path == "http_server.enable":
            continue
        block = "http_server { }\n" if spec.path.startswith("http_server") else ""
        for sample in samples:
            def outcome(text, env):
                try:
                    return load(tmp_path, env, text=text).config
                except ConfigError as error:
                    return "syntax" if "syntax error" in str(error) else ConfigError

            from_env = outcome(block, {spec.env: sample})
            # Quoted, and unquoted as pyhocon types it (a string key written 10s unquoted is
            # pyhocon's duration, which the file refuses: strings like that are quoted).
            for written in (f'"{sample}"',) + (() if isinstance(spec.kind, (Text, Host)) else (sample,)):
                from_file = outcome(f"{block}{spec.path} = {written}\n", {})
                if from_file != "syntax":
                    assert from_file == from_env, (spec.path, written, from_file, from_env)
                    compared += 1
    assert compared >= 200
