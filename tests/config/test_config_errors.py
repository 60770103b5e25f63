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
    assert str(error.value) == (f"{path}:3:1: syntax error: expected ']' to close a list "
                                "(or ',' between its elements); found '}'")


def test_unclosed_block_is_a_syntax_error(tmp_path):
    path = write(tmp_path, "mqtt {\n  max_mqueue_len = 1\n")
    with pytest.raises(ConfigError, match=r"nanomq.conf:3:1: syntax error: expected '}' to close an object .*"
                                          "found the end of the file"):
        load_config(path, env={})


def test_unresolved_substitution_names_its_position(tmp_path):
    path = write(tmp_path, "mqtt {\n  max_mqueue_len = ${NOT_SET_ANYWHERE_X}\n}\n")
    with pytest.raises(ConfigError, match=r"nanomq.conf:2:\d+: mqtt.max_mqueue_len: Cannot resolve variable "
                                          r"\$\{NOT_SET_ANYWHERE_X\}"):
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


def test_missing_top_level_include_is_an_error_naming_its_line(tmp_path):
    path = write(tmp_path, 'mqtt.property_size = 4\n# include "commented.conf"\ninclude "missing.conf"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value) == (f'{path}:3:1: include "missing.conf": cannot read '
                                f'{tmp_path / "missing.conf"}: No such file or directory')


def test_acl_include_typo_is_an_error_not_an_open_broker(tmp_path):
    # The file is nanomq_acl.conf; a typo used to start with no ACL at all (alice granted secret/#).
    (tmp_path / "nanomq_acl.conf").write_text('rules = [ {permit = deny, username = alice, topics = ["secret/#"]} ]\n')
    path = write(tmp_path, 'auth {\n  allow_anonymous = true\n  acl = {include "nanomq_acl.cnf"}\n}\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value).startswith(f'{path}:3:')
    assert 'auth.acl: include "nanomq_acl.cnf": cannot read' in str(error.value)


def test_unreadable_include_is_an_error(tmp_path):
    included = tmp_path / "pwd.conf"
    included.write_text('"alice": "pw"\n')
    included.chmod(0)
    if os.access(included, os.R_OK):
        pytest.skip("running as a user who reads any file (root)")
    path = write(tmp_path, 'auth.password = {include "pwd.conf"}\n')
    with pytest.raises(ConfigError, match=r"nanomq.conf:1:\d+: auth.password: include \"pwd.conf\": cannot read .*"
                                          "Permission denied"):
        load_config(path, env={})


def test_a_directory_as_include_is_an_error(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match=r'nanomq.conf:1:1: include "sub": cannot read .*sub: Is a directory'):
        load_config(write(tmp_path, 'include "sub"\n'), env={})


def test_missing_include_inside_an_included_file_names_that_file_and_line(tmp_path):
    (tmp_path / "auth.conf").write_text('allow_anonymous = false\npassword = {include "gone.conf"}\n')
    path = write(tmp_path, 'auth = {include "auth.conf"}\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value).startswith(f'{tmp_path / "auth.conf"}:2:')
    assert 'include "gone.conf": cannot read' in str(error.value)


def test_syntax_error_inside_an_included_file_names_that_file(tmp_path):
    (tmp_path / "acl.conf").write_text("rules = [\n  {permit = allow\n")
    with pytest.raises(ConfigError, match=r"acl.conf:3:1: syntax error: expected '}'"):
        load_config(write(tmp_path, 'auth.acl = {include "acl.conf"}\n'), env={})


def test_check_config_exits_2_for_an_include_typo(tmp_path):
    path = write(tmp_path, 'auth {\n  acl = {include "nanomq_acl.cnf"}\n}\n')
    result = run_check_config(path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and f"{path}:2:" in result.stderr


def test_syntax_error_says_what_was_expected_in_words_not_the_grammar(tmp_path):
    path = write(tmp_path, "mqtt {\n  a+b = 1\n}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    message = str(error.value)
    assert message.startswith(f"{path}:2:4: syntax error: expected '=', ':' or '{{' after a key")
    assert "found '+'" in message and len(message) < 250 and "Suppress" not in message


def test_pyhocon_type_error_names_the_key(tmp_path):
    path = write(tmp_path, 'log {\n  to = [console] "file"\n}\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    message = str(error.value)
    assert message.startswith(f"{path}:2:") and ": log.to: a string written next to a list" in message
    assert "ConfigList" not in message and "Token" not in message


def test_huge_drain_timeout_names_its_line_and_key(tmp_path):
    for value in ("99999999999999999999s", "9999999999"):
        path = write(tmp_path, f'webhook {{\n  url = "http://127.0.0.1:1/"\n  drain_timeout = {value}\n}}\n')
        with pytest.raises(ConfigError, match=r"nanomq.conf:3: webhook.drain_timeout: .*(too large|1h or less)"):
            load_config(path, env={})


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


def test_pyhocon_internal_failure_on_a_bad_merge_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"nanomq.conf:1: mqtt: is given a value here and keys below it"):
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


def test_every_include_spelling_is_checked(tmp_path):
    for directive in ('include file("gone.conf")', 'include required("gone.conf")',
                      'include required(file("gone.conf"))'):
        path = write(tmp_path, f"mqtt.property_size = 4\n{directive}\n")
        with pytest.raises(ConfigError, match=r"nanomq.conf:2:1: include .*gone.conf.*: cannot read"):
            load_config(path, env={})
    path = write(tmp_path, 'include url("http://127.0.0.1:9/x.conf")\n')
    with pytest.raises(ConfigError, match="only includes of files are supported"):
        load_config(path, env={})


def test_include_inside_a_string_or_comment_is_not_an_include(tmp_path):
    path = write(tmp_path, 'http_server { username = "include \\"x\\"" }\n# include "gone.conf"\n'
                           '// include "gone.conf"\n')
    assert load_config(path, env={}).config.http_server.username == 'include "x"'
