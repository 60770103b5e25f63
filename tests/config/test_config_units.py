"""Durations and sizes in every form NanoMQ users write them (and pyhocon parses them)."""

import pytest

from appliance.config import ConfigError, load_config


def load(tmp_path, text, env=None):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return load_config(str(path), env=env or {})


@pytest.mark.parametrize(
    "written, seconds",
    [
        ("10s", 10.0),  # pyhocon makes a timedelta of unquoted units
        ("500ms", 0.5),
        ("1m", 60.0),  # minutes, not months
        ("1h", 3600.0),
        ("2 s", 2.0),
        ('"10s"', 10.0),
        ('"500ms"', 0.5),
        ('"1m"', 60.0),
        ('"1h"', 3600.0),
        ("15", 15.0),  # a bare number is seconds
        ("2.5", 2.5),
        ('"7"', 7.0),
    ],
)
def test_retry_interval_accepts_every_duration_form(tmp_path, written, seconds):
    assert load(tmp_path, f"mqtt.retry_interval = {written}").config.mqtt.retry_interval == seconds


@pytest.mark.parametrize("written", ["1M", "abc", '"10 parsecs"', "[1]", "true", "-5"])
def test_retry_interval_rejects_non_durations_with_the_expected_form(tmp_path, written):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"mqtt.retry_interval = {written}")
    message = str(error.value)
    assert "mqtt.retry_interval: " in message
    assert "10s, 500ms, 1m, 1h" in message or "greater than 0" in message


@pytest.mark.parametrize(
    "written, size",
    [
        ("10KB", 10 * 1024),  # pyhocon leaves unquoted sizes as strings
        ("256MB", 256 * 1024**2),
        ("1GB", 1024**3),
        ('"1GB"', 1024**3),
        ("10kb", 10 * 1024),
        ("10 KB", 10 * 1024),
        ('"256MB"', 256 * 1024**2),
        ('"10KB"', 10 * 1024),
        ("4096", 4096),  # a bare number is bytes
        ('"512"', 512),
        ("100B", 100),
    ],
)
def test_sizes_accept_every_form(tmp_path, written, size):
    assert load(tmp_path, f"log.rotation.size = {written}").config.log.rotation.size == size


@pytest.mark.parametrize("written", ["10XB", "1.5.MB", "lots", "[1KB]", "2.5"])
def test_max_packet_size_rejects_non_sizes_with_the_expected_form(tmp_path, written):
    with pytest.raises(ConfigError, match=r"mqtt.max_packet_size: expected a size such as 1024, 10KB, 256MB or 1GB"):
        load(tmp_path, f"mqtt.max_packet_size = {written}")


def test_max_packet_size_takes_nanomq_units_of_1024(tmp_path):
    config = load(tmp_path, "mqtt.max_packet_size = 10KB").config
    assert config.mqtt.max_packet_size == 10 * 1024


def test_max_packet_size_above_nanomq_ceiling_names_the_range_in_units(tmp_path):
    with pytest.raises(ConfigError, match="mqtt.max_packet_size: must be between 1B and 260MB, got 1GB"):
        load(tmp_path, "mqtt.max_packet_size = 1GB")


@pytest.mark.parametrize(
    "written, seconds",
    [("5000", 5.0), ("250", 0.25), ("2s", 2.0), ('"1500ms"', 1.5), ("1m", 60.0)],
)
def test_webhook_cancel_timeout_numbers_are_milliseconds_units_are_units(tmp_path, written, seconds):
    text = f'webhook {{ url = "http://127.0.0.1:80/h", cancel_timeout = {written} }}'
    assert load(tmp_path, text).config.webhook.cancel_timeout == seconds


@pytest.mark.parametrize("written", ["yes", "on", "true", '"true"', "TRUE"])
def test_booleans_accept_hocon_true_words(tmp_path, written):
    config = load(tmp_path, f'listeners.tcp {{ bind = "0.0.0.0:1883", enable = {written} }}').config
    assert len(config.listeners) == 1


@pytest.mark.parametrize("written", ["no", "off", "false", '"false"'])
def test_booleans_accept_hocon_false_words(tmp_path, written):
    config = load(
        tmp_path,
        f'listeners.tcp {{ bind = "0.0.0.0:1883", enable = {written} }}\nlisteners.tcp.b {{ bind = "127.0.0.1:1" }}',
    ).config
    assert [listener.name for listener in config.listeners] == ["tcp.b"]


def test_a_non_boolean_enable_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="listeners.tcp.enable: expected true or false, got 'maybe'"):
        load(tmp_path, 'listeners.tcp { bind = "0.0.0.0:1883", enable = maybe }')
