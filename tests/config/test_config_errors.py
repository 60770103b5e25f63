"""Errors are one line naming file, line and key; bad input never escapes as another exception."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError, load_config, load_config_text

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return str(path)


def test_value_error_names_file_line_and_key_path(tmp_path):
    path = write(tmp_path, "# comment\n\nmqtt {\n    property_size = 32\n    max_mqueue_len = -1\n}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value) == f"{path}:5: mqtt.max_mqueue_len: must be 1 or more, got -1"
    assert (error.value.source, error.value.line, error.value.path) == (path, 5, "mqtt.max_mqueue_len")


def test_line_is_that_of_the_last_definition_of_a_repeated_key(tmp_path):
    path = write(tmp_path, "mqtt.property_size = 1\nmqtt {\n  property_size = 0\n}\n")
    with pytest.raises(ConfigError, match=r"nanomq.conf:3: mqtt.property_size: "):
        load_config(path, env={})


def test_syntax_error_reports_pyhocon_line_and_column(tmp_path):
    path = write(tmp_path, "mqtt {\n  max_mqueue_len = [1, 2\n}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value) == f"{path}:3:1: syntax error: Expected ']', found '}}'"


def test_unclosed_block_is_a_syntax_error(tmp_path):
    path = write(tmp_path, "mqtt {\n  max_mqueue_len = 1\n")
    with pytest.raises(ConfigError, match=r"nanomq.conf:3:1: syntax error: Expected '}'"):
        load_config(path, env={})


def test_unresolved_substitution_names_its_position(tmp_path):
    path = write(tmp_path, "mqtt {\n  max_mqueue_len = ${NOT_SET_ANYWHERE_X}\n}\n")
    with pytest.raises(ConfigError, match=r"nanomq.conf:2:\d+: Cannot resolve variable \$\{NOT_SET_ANYWHERE_X\}"):
        load_config(path, env={})


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nanomq.conf: cannot read the file: No such file or directory"):
        load_config(str(tmp_path / "nanomq.conf"), env={})


def test_non_utf8_file_is_a_config_error(tmp_path):
    path = tmp_path / "nanomq.conf"
    path.write_bytes(b"mqtt.property_size = \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(str(path), env={})


def test_block_given_a_scalar_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r":1: webhook: expected an object \{ ... \}, got 'on'"):
        load_config(write(tmp_path, "webhook = on\n"), env={})


def test_missing_include_is_a_warning_not_a_crash(tmp_path):
    loaded = load_config(write(tmp_path, 'include "missing.conf"\nmqtt.property_size = 4\n'), env={})
    assert loaded.config.mqtt.property_size == 4
    assert any("Cannot include file" in warning and "missing.conf" in warning for warning in loaded.warnings)


def test_relative_include_is_read_beside_the_file(tmp_path):
    (tmp_path / "mqtt.conf").write_text("mqtt.property_size = 5\n")
    loaded = load_config(write(tmp_path, 'include "mqtt.conf"\n'), env={})
    assert loaded.config.mqtt.property_size == 5
    assert loaded.warnings == []


def test_string_loader_names_its_source():
    with pytest.raises(ConfigError, match=r"^inline:1: log.level: "):
        load_config_text("log.level = loud", source="inline", env={})


HOCONISH = st.lists(
    st.sampled_from(list('abcmqtlogwebhk_.=:{}[]," \n\t#$/10s') + [
        "mqtt", "webhook", "events", "listeners.tcp", "bind", "url", "log", "to", "level",
        "http_server", "port", '"0.0.0.0:1883"', '"http://h/"', "10KB", "500ms", "include",
        "${X}", "rule", "event", "topic", "true", "null",
    ]),
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOCONISH)
def test_any_text_loads_or_raises_one_line_config_error(text):
    try:
        loaded = load_config_text(text, source="fuzz.conf", env={})
    except ConfigError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("fuzz.conf")
    else:
        assert all("\n" not in warning for warning in loaded.warnings)


KEYS = [
    "listeners.tcp.bind", "listeners.tcp", "listeners.tcp.a.bind", "listeners.tcp.enable", "listeners",
    "mqtt", "mqtt.max_packet_size", "mqtt.max_mqueue_len", "mqtt.retry_interval", "mqtt.keepalive_multiplier",
    "log", "log.to", "log.level", "log.dir", "log.rotation", "log.rotation.size", "log.rotation.count",
    "http_server", "http_server.port", "http_server.bind", "http_server.enable", "http_server.auth_type",
    "http_server.password", "webhook", "webhook.url", "webhook.headers", "webhook.headers.a", "webhook.body",
    "webhook.body.encoding", "webhook.events", "webhook.ssl", "webhook.tls", "webhook.retry",
    "webhook.queue", "webhook.queue.spool_dir", "webhook.rule", "webhook.rule.client",
    "webhook.rule.client.connack", "webhook.enable", "webhook.cancel_timeout", "webhook.drain_timeout",
]
VALUES = [
    "null", '""', "0", "-1", "1.5", "true", "[]", "[1]", "{}", "{a = 1}", '"x"', "10s", "10KB", "[{}]",
    "[{event = null}]", "[null]", '"http://h/"', "[{action = 1}]", "1e400", "9" * 400, '"' + "9" * 40 + 'KB"',
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), min_size=1, max_size=4))
def test_any_value_under_any_supported_key_loads_or_raises_config_error(pairs):
    text = 'webhook.url = "http://127.0.0.1/"\n' + "\n".join(f"{key} = {value}" for key, value in pairs)
    try:
        load_config_text(text, source="fuzz.conf", env={})
    except ConfigError as error:
        assert "\n" not in str(error) and len(str(error)) < 600


def test_pyhocon_internal_failure_on_a_bad_merge_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nanomq.conf: cannot be parsed \(TypeError in pyhocon"):
        load_config(write(tmp_path, "mqtt = []\nmqtt.max_packet_size = null\n"), env={})


def test_absurdly_large_numbers_are_errors_not_overflows(tmp_path):
    with pytest.raises(ConfigError, match="mqtt.retry_interval: expected a duration"):
        load_config(write(tmp_path, "mqtt.retry_interval = " + "9" * 400), env={})
    with pytest.raises(ConfigError, match="mqtt.keepalive_multiplier: expected a number"):
        load_config(write(tmp_path, "mqtt.keepalive_multiplier = 1e400"), env={})


def run_check_config(conf_path, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOMQ_")}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "appliance", "check-config", "--conf", conf_path],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


def test_cli_check_config_prints_one_error_line_and_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, "mqtt {\n  retry_interval = soon\n}\n")
    result = run_check_config(path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}:2: mqtt.retry_interval: expected a duration such as 10s, 500ms, 1m, 1h "
        "or a number of seconds, got 'soon'"
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_check_config_reports_a_bad_environment_variable(tmp_path):
    result = run_check_config(write(tmp_path, ""), {"NANOMQ_HTTP_SERVER_PORT": "http"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: environment: NANOMQ_HTTP_SERVER_PORT (http_server.port): ")
    assert "Traceback" not in result.stderr


def test_cli_check_config_accepts_the_shipped_file_without_warnings():
    result = run_check_config(str(REPO / "etc" / "nanomq.conf"))
    assert (result.returncode, result.stderr) == (0, "")
