"""The stage's own keys (webhook.order, webhook.queue.sync): read, defaulted, and refused with
one line naming file, line and key."""

from __future__ import annotations

import pytest

from appliance.config import ConfigError, load_config_text

BASE = 'webhook {\n  url = "http://127.0.0.1:9/hook"\n'


def webhook(text: str):
    return load_config_text(BASE + text + "\n}\n", source="k.conf", env={}).config.webhook


def test_defaults_are_client_order_and_fsync():
    config = webhook("")
    assert (config.order, config.queue.sync) == ("client", "fsync")


@pytest.mark.parametrize("order", ["client", "topic", "none", "TOPIC"])
def test_every_order_scope_is_read(order):
    assert webhook(f"  order = {order}").order == order.lower()


def test_sync_os_is_read():
    assert webhook('  queue { spool_dir = "/tmp/x", sync = os }').queue.sync == "os"


@pytest.mark.parametrize("text, key", [("  order = random", "webhook.order"),
                                       ("  queue { sync = sometimes }", "webhook.queue.sync")])
def test_a_wrong_value_is_one_line_naming_file_line_and_key(text, key):
    with pytest.raises(ConfigError) as error:
        webhook(text)
    message = str(error.value)
    assert message.startswith("k.conf:3: " + key) and "expected one of" in message and "\n" not in message


def test_sync_without_a_spool_is_a_warning_not_silence():
    loaded = load_config_text(BASE + "  queue { sync = os }\n}\n", source="k.conf", env={})
    assert any("webhook.queue.sync has no effect without spool_dir" in w for w in loaded.warnings)
