"""The MQTT 5 property table: every property of the spec, by identifier, name and data type."""

from __future__ import annotations

import pytest

from appliance.mqtt import PROPERTIES, PacketType, Publish, encode
from appliance.mqtt.properties import encode_properties

SPEC = {  # MQTT 5.0 table 2-4
    0x01: ("payload_format_indicator", "byte"), 0x02: ("message_expiry_interval", "four_byte_integer"),
    0x03: ("content_type", "utf8_string"), 0x08: ("response_topic", "utf8_string"),
    0x09: ("correlation_data", "binary_data"), 0x0B: ("subscription_identifier", "variable_byte_integer"),
    0x11: ("session_expiry_interval", "four_byte_integer"),
    0x12: ("assigned_client_identifier", "utf8_string"), 0x13: ("server_keep_alive", "two_byte_integer"),
    0x15: ("authentication_method", "utf8_string"), 0x16: ("authentication_data", "binary_data"),
    0x17: ("request_problem_information", "byte"), 0x18: ("will_delay_interval", "four_byte_integer"),
    0x19: ("request_response_information", "byte"), 0x1A: ("response_information", "utf8_string"),
    0x1C: ("server_reference", "utf8_string"), 0x1F: ("reason_string", "utf8_string"),
    0x21: ("receive_maximum", "two_byte_integer"), 0x22: ("topic_alias_maximum", "two_byte_integer"),
    0x23: ("topic_alias", "two_byte_integer"), 0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"), 0x26: ("user_property", "utf8_string_pair"),
    0x27: ("maximum_packet_size", "four_byte_integer"), 0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"), 0x2A: ("shared_subscription_available", "byte"),
}


def test_table_holds_every_spec_property_with_its_type():
    assert {i: (p.name, p.kind) for i, p in PROPERTIES.items()} == SPEC


def test_only_user_property_and_publish_subscription_identifier_repeat():
    repeatable = {p.name: set(p.repeatable_in) for p in PROPERTIES.values() if p.repeatable_in}
    assert repeatable["subscription_identifier"] == {PacketType.PUBLISH}
    assert set(repeatable) == {"user_property", "subscription_identifier"}


def test_user_properties_keep_their_order_and_duplicates():
    pairs = [("b", "1"), ("a", "2"), ("b", "3")]
    block = encode_properties({"user_property": pairs}, PacketType.PUBLISH)
    assert block == bytes.fromhex("15 26 0001 62 0001 31 26 0001 61 0001 32 26 0001 62 0001 33")


@pytest.mark.parametrize("properties", [{"no_such_property": 1}, {"session_expiry_interval": 1}])
def test_encoding_a_property_the_packet_cannot_carry_is_refused(properties):
    with pytest.raises(ValueError):
        encode(Publish("a", b"", properties=properties), 5)
