"""The key paths a reload reports: declared key paths, listeners and bridges by name, and
never a value."""

from appliance.config import load_config_text
from appliance.reload import changed_keys


def config(text: str):
    return load_config_text(text, env={}).config


def test_paths_are_the_declared_keys_and_never_values():
    old = config('webhook { url = "http://a:1/x", headers.authorization = "Bearer one-secret" }\n'
                 'listeners.tcp { bind = "127.0.0.1:1883" }\nlimits { max_connections = 5 }\n')
    new = config('webhook { url = "http://b:1/x", headers.authorization = "Bearer two-secret" }\n'
                 'listeners.tcp { bind = "127.0.0.1:1884" }\nlimits { max_connections = 6 }\n')
    paths = changed_keys(old, new)
    assert paths == ["listeners.tcp", "webhook.url", "webhook.headers", "limits.max_connections"]
    assert not any("secret" in path for path in paths)


def test_a_block_that_appears_or_goes_is_named_whole():
    assert changed_keys(config(""), config("auth { no_match = deny }\n")) == ["auth"]
    assert changed_keys(config(""), config("")) == []


def test_bridges_are_named_by_their_block():
    old = config('bridges.mqtt.up { server = "mqtt-tcp://127.0.0.1:1" }\n')
    new = config('bridges.mqtt.up { server = "mqtt-tcp://127.0.0.1:2" }\nbridges.mqtt.b { server = "mqtt-tcp://127.0.0.1:3" }\n')
    assert changed_keys(old, new) == ["bridges.mqtt.b", "bridges.mqtt.up"]
