"""The key table: one declaration per key, obeyed by blocks built in code as by the file."""

import pytest

from appliance.config import table
from appliance.config.keys import Invalid
from appliance.config.model import (
    HttpAuthRequest, LimitsConfig, MqttConfig, TlsConfig, WebhookConfig, WebhookRetry,
)


def test_every_key_is_declared_once_with_a_doc():
    paths = [spec.path for spec in table()]
    assert len(paths) == len(set(paths))
    assert all(spec.doc and spec.kind.form for spec in table())


@pytest.mark.parametrize("build, field", [
    (lambda: MqttConfig(max_packet_size=0), "max_packet_size"),
    (lambda: MqttConfig(max_packet_size=261 * 1024 * 1024), "max_packet_size"),
    (lambda: MqttConfig(max_inflight_window=70000), "max_inflight_window"),
    (lambda: LimitsConfig(max_connections=0), "max_connections"),
    (lambda: WebhookConfig(url="ftp://host/"), "url"),
    (lambda: WebhookConfig(url="http://host/", encoding="base32"), "encoding"),
    (lambda: WebhookConfig(url="http://host/", headers=(("X-A", "1\r\nEvil: 2"),)), "headers"),
    (lambda: WebhookConfig(url="http://host/", headers=(("Bad Name", "1"),)), "headers"),
    (lambda: WebhookConfig(url="http://host/", drain_timeout=10**12), "drain_timeout"),
    (lambda: WebhookRetry(backoff_min=5.0, backoff_max=1.0), "backoff_max"),
    (lambda: TlsConfig("c.pem", "k.pem", verify_peer=True), "verify_peer"),
    (lambda: HttpAuthRequest("http://a/", params=(("p", "%Z"),)), "params"),
])
def test_a_block_built_in_code_obeys_the_same_rules_as_the_file(build, field):
    # So nothing downstream (webhook sender, encoder...) needs to re-check its config.
    with pytest.raises(Invalid) as error:
        build()
    assert error.value.field == field

