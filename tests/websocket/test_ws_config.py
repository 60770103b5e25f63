"""`listeners.ws` / `listeners.wss` and NANOMQ_WEBSOCKET_*: NanoMQ's meanings and defaults,
our two keys, and one-line errors for wrong values."""

import pytest

from appliance.config import ConfigError, load_config
from appliance.config.model import ListenerConfig, TlsConfig, WebSocketConfig
from tests.security.tls_pki import Pki


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def load(tmp_path, text, env=None):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def ssl_block(pki):
    return f'listeners.ssl {{ bind = "0.0.0.0:8883", certfile = "{pki.server_cert}", keyfile = "{pki.server_key}" }}\n'


def test_nanomq_shipped_ws_block(tmp_path):
    config = load(tmp_path, 'listeners.tcp { bind = "0.0.0.0:1883" }\nlisteners.ws { bind = "0.0.0.0:8083/mqtt" }\n')
    assert config.config.listeners[1] == ListenerConfig("ws", "0.0.0.0", 8083, None, WebSocketConfig("/mqtt"))
    assert config.warnings == []


@pytest.mark.parametrize("bind, expected", [
    ("0.0.0.0:8083", ("0.0.0.0", 8083, "/mqtt")),  # no path: NanoMQ's /mqtt
    ("127.0.0.1:9001/", ("127.0.0.1", 9001, "/")),
    ("[::]:8083/ws/mqtt", ("::", 8083, "/ws/mqtt")),
])
def test_bind_host_port_and_path(tmp_path, bind, expected):
    listener = load(tmp_path, f'listeners.ws {{ bind = "{bind}" }}\n').config.listeners[0]
    assert (listener.host, listener.port, listener.websocket.path) == expected


def test_a_block_without_bind_keeps_the_default_address(tmp_path):
    listener = load(tmp_path, "listeners.ws { enable = true }\n").config.listeners[0]
    assert (listener.name, listener.host, listener.port, listener.websocket.path) == ("ws", "0.0.0.0", 8083, "/mqtt")


def test_named_ws_listeners_and_our_keys(tmp_path):
    config = load(tmp_path, 'listeners.ws.dash { bind = "127.0.0.1:8083/mqtt", max_message_size = 256KB\n'
                            ' allowed_origins = ["https://dash.example:8443"] }\n'
                            'listeners.ws.off { bind = "127.0.0.1:8090/mqtt", enable = false }\n').config
    assert config.listeners == (ListenerConfig("ws.dash", "127.0.0.1", 8083, None, WebSocketConfig(
        "/mqtt", 256 * 1024, ("https://dash.example:8443",))),)


def test_wss_takes_the_ssl_listeners_certificate_and_may_override_keys(tmp_path, pki):
    config = load(tmp_path, ssl_block(pki) + f'listeners.wss {{ bind = "0.0.0.0:8084/mqtt" }}\n'
                  f'listeners.wss.mtls {{ bind = "0.0.0.0:8085/mqtt", cacertfile = "{pki.ca}", verify_peer = true }}\n'
                  ).config
    ssl, wss, mtls = config.listeners
    assert wss.tls == ssl.tls == TlsConfig(pki.server_cert, pki.server_key)
    assert (mtls.tls.certfile, mtls.tls.cacertfile, mtls.tls.verify_peer) == (pki.server_cert, pki.ca, True)


@pytest.mark.parametrize("text, problem", [
    ('listeners.wss { bind = "0.0.0.0:8084/mqtt" }\n',
     'listeners.wss.certfile: a wss listener needs certfile = "/path/to/cert.pem" (here or in listeners.ssl)'),
    ('listeners.ws { bind = "0.0.0.0/mqtt" }\n', "listeners.ws.bind: expected \"host:port\""),
    ('listeners.ws { bind = 8083 }\n', 'listeners.ws.bind: expected "host:port/path", got 8083'),
    ('listeners.ws { max_message_size = 1 }\n', "listeners.ws.max_message_size: must be between 2B and"),
    ('listeners.ws { allowed_origins = "https://a.example" }\n', "listeners.ws.allowed_origins: expected a list"),
    ('listeners.ws { allowed_origins = ["dash.example"] }\n',
     'listeners.ws.allowed_origins[0]: expected an origin such as "https://dash.example:8443"'),
    ('listeners.tcp { bind = "0.0.0.0:8083" }\nlisteners.ws { bind = "0.0.0.0:8083/mqtt" }\n',
     "listeners.ws.bind: same address as listener tcp"),
])
def test_wrong_values_are_one_line_errors(tmp_path, text, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert problem in str(error.value)
    assert "\n" not in str(error.value)


def test_environment_turns_websocket_on_at_nanomq_url(tmp_path, pki):
    env = {"NANOMQ_WEBSOCKET_ENABLE": "true", "NANOMQ_WEBSOCKET_URL": "nmq-ws://127.0.0.1:9083/ws",
           "NANOMQ_WEBSOCKET_TLS_URL": "nmq-wss://127.0.0.1:9084/wss"}
    loaded = load(tmp_path, ssl_block(pki), env)
    by_name = {listener.name: listener for listener in loaded.config.listeners}
    assert (by_name["ws"].host, by_name["ws"].port, by_name["ws"].websocket.path) == ("127.0.0.1", 9083, "/ws")
    assert (by_name["wss"].port, by_name["wss"].websocket.path, by_name["wss"].tls) == (
        9084, "/wss", by_name["ssl"].tls)
    assert loaded.warnings == []


def test_environment_enable_alone_uses_the_default_url_and_false_removes_it(tmp_path):
    on = load(tmp_path, "", {"NANOMQ_WEBSOCKET_ENABLE": "true"}).config.listeners
    assert ("ws", "0.0.0.0", 8083, "/mqtt") in [(l.name, l.host, l.port, l.websocket and l.websocket.path) for l in on]
    off = load(tmp_path, 'listeners.ws { bind = "0.0.0.0:8083/mqtt" }\n', {"NANOMQ_WEBSOCKET_ENABLE": "false"})
    assert [listener.name for listener in off.config.listeners] == []


@pytest.mark.parametrize("env, problem", [
    ({"NANOMQ_WEBSOCKET_URL": "nmq-tcp://0.0.0.0:8083"}, "NANOMQ_WEBSOCKET_URL (listeners.ws.bind): expected"),
    ({"NANOMQ_WEBSOCKET_TLS_ENABLE": "true"}, "wss needs a certificate"),
    ({"NANOMQ_WEBSOCKET_ENABLE": "maybe"}, "NANOMQ_WEBSOCKET_ENABLE (listeners.ws.enable)"),
])
def test_environment_errors_name_the_variable(tmp_path, env, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "", env)
    assert problem in str(error.value)


def test_shipped_ws_example_loads_without_warnings_when_uncommented():
    from tests.config.test_config_shipped import SHIPPED, uncomment_block
    from appliance.config import load_config_text

    loaded = load_config_text(uncomment_block(SHIPPED.read_text(), "listeners.ws {"), source="nanomq.conf", env={})
    assert loaded.warnings == []
    assert ListenerConfig("ws", "0.0.0.0", 8083, None, WebSocketConfig("/mqtt")) in loaded.config.listeners
