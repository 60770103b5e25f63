"""The security keys of nanomq.conf: auth, listeners.ssl, limits and their environment
variables, read once into typed config with clear errors naming the key."""

import re
from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config, load_config_text
from tls_pki import Pki

SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "nanomq.conf"


def load(text, env=None):
    return load_config_text(text, source="n.conf", env=env or {})


def test_acl_rule_errors_name_the_rule_and_the_key():
    with pytest.raises(ConfigError, match=r"auth.acl.rules\[1\].action: expected one of publish, subscribe, pubsub"):
        load('auth.acl.rules = [{permit = allow}, {permit = deny, action = pub}]')
    with pytest.raises(ConfigError, match=r"auth.acl.rules\[0\]: a rule needs permit"):
        load('auth.acl.rules = [{action = publish}]')
    with pytest.raises(ConfigError, match=r"auth.acl.rules\[0\].and: and\[0\]: expected one of"):
        load('auth.acl.rules = [{permit = allow, and = [{topic = x}]}]')


def test_auth_keys_have_nanomq_defaults():
    auth = load("auth { }").config.auth
    assert (auth.allow_anonymous, auth.no_match, auth.deny_action) == (True, "allow", "ignore")
    assert (auth.cache_max_size, auth.cache_ttl) == (32, 60.0)
    assert load("").config.auth is None


def test_http_auth_params_with_an_unknown_placeholder_are_an_error():
    with pytest.raises(ConfigError, match=r"auth.http_auth.auth_req.params: u: unknown placeholder"):
        load('auth.http_auth.auth_req { url = "http://h/a", params = {u = "%x"} }')


def test_ssl_listener_needs_readable_files_and_says_which(tmp_path):
    with pytest.raises(ConfigError, match=r"listeners.ssl.certfile: an ssl listener needs certfile"):
        load('listeners.ssl { bind = "0.0.0.0:8883" }')
    with pytest.raises(ConfigError, match=r"listeners.ssl.keyfile: cannot read"):
        (tmp_path / "cert.pem").write_text("")
        load(f'listeners.ssl {{ certfile = "{tmp_path}/cert.pem", keyfile = "{tmp_path}/none.key" }}')


def test_ssl_listener_keys_and_named_listeners(tmp_path):
    pki = Pki(tmp_path)
    files = f'certfile = "{pki.server_cert}", keyfile = "{pki.server_key}", cacertfile = "{pki.ca}"'
    config = load(f'listeners.ssl {{ {files}, verify_peer = true, fail_if_no_peer_cert = true, key_password = pw }}\n'
                  f'listeners.ssl.edge {{ bind = "127.0.0.1:8884", {files} }}').config
    default, edge = [listener for listener in config.listeners if listener.tls]
    assert (default.name, default.host, default.port) == ("ssl", "0.0.0.0", 8883)
    assert default.tls.verify_peer and default.tls.fail_if_no_peer_cert
    assert (edge.name, edge.port, edge.tls.verify_peer) == ("ssl.edge", 8884, False)
    assert "pw" not in repr(default.tls).replace("password", "")


def test_limits_have_safe_defaults_and_are_checked():
    limits = load("").config.limits
    assert limits.max_connections == 10_000 and limits.max_topic_levels == 64
    assert load("limits { max_retained_bytes = 1MB }").config.limits.max_retained_bytes == 1024 * 1024
    with pytest.raises(ConfigError, match="limits.max_connections: must be 1 or more"):
        load("limits { max_connections = 0 }")


def test_tls_environment_variables_make_or_change_the_ssl_listener(tmp_path):
    pki = Pki(tmp_path)
    env = {"NANOMQ_TLS_ENABLE": "true", "NANOMQ_TLS_URL": "tls+nmq-tcp://127.0.0.1:9883",
           "NANOMQ_TLS_CERT_PATH": pki.server_cert, "NANOMQ_TLS_KEY_PATH": pki.server_key,
           "NANOMQ_TLS_CA_CERT_PATH": pki.ca, "NANOMQ_TLS_VERIFY_PEER": "true",
           "NANOMQ_TLS_FAIL_IF_NO_PEER_CERT": "true", "NANOMQ_TLS_KEY_PASSWORD": "pw"}
    loaded = load("", env)
    (ssl,) = [listener for listener in loaded.config.listeners if listener.tls]
    assert (ssl.host, ssl.port, ssl.tls.verify_peer, ssl.tls.fail_if_no_peer_cert) == ("127.0.0.1", 9883, True, True)
    assert loaded.warnings == []
    assert not [l for l in load("", {**env, "NANOMQ_TLS_ENABLE": "false"}).config.listeners if l.tls]
    with pytest.raises(ConfigError, match="NANOMQ_TLS_CERT_PATH and NANOMQ_TLS_KEY_PATH"):
        load("", {"NANOMQ_TLS_ENABLE": "true"})


def test_allow_anonymous_variable_overrides_the_file():
    assert load("auth { allow_anonymous = true }", {"NANOMQ_ALLOW_ANONYMOUS": "false"}).config.auth.allow_anonymous is False


def test_shipped_auth_example_loads_without_warnings_when_uncommented(tmp_path):
    text = SHIPPED.read_text()
    start = text.index("# auth {")
    end = text.index("\n# }\n", start) + 5
    block = "\n".join(re.sub(r"^# ?", "", line) for line in text[start:end].splitlines())
    (tmp_path / "nanomq_pwd.conf").write_text('admin: "public"\n')
    (tmp_path / "nanomq_acl.conf").write_text('rules = [{permit = allow}]\n')
    block = block.replace("/etc/nanomq_pwd.conf", "nanomq_pwd.conf").replace("/etc/nanomq_acl.conf", "nanomq_acl.conf")
    (tmp_path / "nanomq.conf").write_text(text + "\n" + block + "\n")
    loaded = load_config(str(tmp_path / "nanomq.conf"), env={})
    assert loaded.warnings == []
    assert loaded.config.auth.passwords == (("admin", "public"),) and len(loaded.config.auth.acl) == 1
