"""The shipped etc/nanomq.conf: a useful broker, zero warnings, and examples that stay valid."""

import re
from pathlib import Path

from appliance.config import load_config, load_config_text, markdown, table
from appliance.config.model import HttpServerConfig, ListenerConfig

SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "nanomq.conf"


def uncomment_block(text, opening):
    """The text with the commented block starting at `# <opening>` uncommented, one level."""
    lines = text.splitlines()
    start = lines.index(f"# {opening}")
    end = next(i for i in range(start, len(lines)) if lines[i] == "# }")
    body = [re.sub(r"^# ?", "", line) for line in lines[start : end + 1]]
    return "\n".join(lines[:start] + body + lines[end + 1 :]) + "\n"


def test_shipped_config_loads_with_zero_warnings():
    loaded = load_config(str(SHIPPED), env={})
    assert loaded.warnings == []


def test_shipped_config_starts_tcp_1883_http_8081_console_warn_and_no_webhook():
    config = load_config(str(SHIPPED), env={}).config
    assert config.listeners == (ListenerConfig("tcp", "0.0.0.0", 1883),)
    assert config.http_server == HttpServerConfig(port=8081, bind="0.0.0.0")
    assert (config.log.to, config.log.level) == (("console",), "warn")
    assert config.webhook is None


def test_shipped_webhook_example_loads_when_uncommented():
    text = uncomment_block(SHIPPED.read_text(), "webhook {")
    loaded = load_config_text(text, source="nanomq.conf", env={})
    assert loaded.warnings == []
    webhook = loaded.config.webhook
    assert webhook.url == "http://127.0.0.1:80"
    assert [(rule.event, rule.topic) for rule in webhook.rules] == [
        ("on_message_publish", "a/b/c"),
        ("on_client_connack", None),
        ("on_client_disconnected", None),
    ]
    assert webhook.cancel_timeout == 5.0


def test_shipped_unimplemented_examples_warn_once_each_when_uncommented():
    text = SHIPPED.read_text()
    for opening in ("system {", "sqlite {", "rules.sqlite {"):
        text = uncomment_block(text, opening)
    warnings = load_config_text(text, source="nanomq.conf", env={}).warnings
    assert [w.split(": ", 1)[1] for w in warnings] == [
        "system is not implemented (ignored)",
        "sqlite.flush_mem_threshold has no effect here (every QoS 1/2 message is written, in group commits, "
        "before it is acknowledged, not after a threshold of messages)",
        "sqlite.resend_interval has no effect here (a bridge replays its disk queue as soon as it is connected "
        "again)",
        "rules is not implemented (ignored)",
    ]


def test_shipped_persistence_example_loads_when_uncommented():
    loaded = load_config_text(uncomment_block(SHIPPED.read_text(), "persistence {"), source="nanomq.conf", env={})
    assert loaded.warnings == []
    assert (loaded.config.persistence.dir, loaded.config.persistence.sync) == ("/var/lib/nanomq", "fsync")


def test_readme_configuration_reference_is_the_generated_table():
    # scripts/config_reference.py writes it; run it after changing a key declaration.
    readme = (SHIPPED.parents[1] / "README.md").read_text()
    assert markdown() in readme


def test_every_plain_key_in_the_table_is_read_from_the_file_not_warned_unknown():
    samples = {"duration": "1s", "size": "1KB", "bool": "true", "string": '"x"', "path": '"/tmp/x"',
               "int": "1", "number": "1", "IP": '"127.0.0.1"'}
    checked = 0
    for key in table():
        if "<" in key.path or "[" in key.path or key.path in ("webhook.url", "webhook.ssl.keyfile"):
            continue
        value = next((v for form, v in samples.items() if key.kind.form.startswith(form)), None)
        if value is None:
            continue
        # Nested, not dotted: a top-level `sqlite.x = ...` line is NanoMQ's old key=value format.
        *parents, name = key.path.split(".")
        nested = "".join(f"{parent} {{ " for parent in parents) + f"{name} = {value}" + " }" * len(parents)
        text = f'webhook.url = "http://127.0.0.1/"\nhttp_server {{}}\npersistence {{ dir = "/tmp/x" }}\n{nested}\n'
        warnings = load_config_text(text, source="k.conf", env={}).warnings
        assert not any("unknown key" in w for w in warnings), (key.path, warnings)
        checked += 1
    assert checked >= 40
