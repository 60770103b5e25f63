"""TLS to a real mosquitto with a CA made in the test; a bad certificate and a refused login
each give one clear log line (no traceback) while the bridge keeps retrying."""

from __future__ import annotations

import pytest

from tests.bridge.metrics import bridge_metrics
from tests.bridge.test_bridge_mosquitto import bridge_block, connected
from tests.bridge.test_bridge_outage import eventually


def test_tls_bridge_verifies_the_upstream_and_forwards(pki, mosquitto_factory, broker_factory, mqtt):
    upstream = mosquitto_factory(tls=pki)
    appliance = broker_factory(bridge_block("up", upstream.port, 5, f"""
 ssl {{ cacertfile = "{pki.ca}" }}
 forwards = [ "tls/#" ]
 subscription = [ {{ remote_topic = "down/#", qos = 1 }} ]
""", scheme="tls+mqtt-tcp"))
    line = appliance.wait_for_log(r"bridge up: connected to ")
    assert "TLS" in line
    local = mqtt(appliance.port, "local")
    local.connect()
    local.subscribe("down/#", qos=1)
    local.publish("tls/a", "secret", qos=1)
    # The cloud side reads over TLS too: paho with the same CA.
    import ssl

    cloud = mqtt(upstream.port, "cloud")
    cloud.client.tls_set(ca_certs=pki.ca, cert_reqs=ssl.CERT_REQUIRED)
    cloud.connect()
    cloud.subscribe("tls/#", qos=1)
    local.publish("tls/b", "secret-2", qos=1)
    assert cloud.expect_message().payload == b"secret-2"
    cloud.publish("down/x", "cmd", qos=1)
    assert local.expect_message().payload == b"cmd"


def test_untrusted_certificate_logs_once_and_keeps_retrying(tmp_path, pki, mosquitto_factory, broker_factory):
    from tests.security.tls_pki import Pki

    other = tmp_path / "other-ca"
    other.mkdir()
    untrusted = Pki(other)  # a CA that did not sign mosquitto's certificate
    upstream = mosquitto_factory(tls=pki)
    appliance = broker_factory(bridge_block("up", upstream.port, 4, f"""
 ssl {{ cacertfile = "{untrusted.ca}" }}
 forwards = [ "a/#" ]
""", scheme="tls+mqtt-tcp"))
    appliance.wait_for_log(r"bridge up: .*TLS: the upstream's certificate was refused: ")
    assert eventually(lambda: bridge_metrics(appliance)["appliance_bridge_reconnects_total"] >= 3)
    logs = appliance.logs()
    assert logs.count("certificate was refused") == 1
    assert "Traceback" not in logs
    assert bridge_metrics(appliance)["appliance_bridge_up"] == 0


@pytest.mark.parametrize("proto_ver, reason", [(4, r"not authorized \(0x05\)"),
                                               (5, r"(bad user name or password \(0x86\)|not authorized \(0x87\))")])
def test_refused_login_logs_the_reason_once_and_keeps_retrying(proto_ver, reason, mosquitto_factory, broker_factory):
    upstream = mosquitto_factory(passwords={"edge": "right-password"})
    appliance = broker_factory(bridge_block("up", upstream.port, proto_ver, """
 username = "edge"
 password = "wrong-password"
 forwards = [ "a/#" ]
"""))
    appliance.wait_for_log(rf"bridge up: 127\.0\.0\.1:\d+: the upstream refused the connection: {reason}; retrying")
    assert eventually(lambda: bridge_metrics(appliance)["appliance_bridge_reconnects_total"] >= 3)
    logs = appliance.logs()
    assert logs.count("refused the connection") == 1
    assert "wrong-password" not in logs
    assert "Traceback" not in logs


def test_right_login_connects(mosquitto_factory, broker_factory):
    upstream = mosquitto_factory(passwords={"edge": "right-password"})
    appliance = broker_factory(bridge_block("up", upstream.port, 4, """
 username = "edge"
 password = "right-password"
 forwards = [ "a/#" ]
"""))
    connected(appliance)
    assert bridge_metrics(appliance)["appliance_bridge_up"] == 1
