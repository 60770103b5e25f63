"""The appliance bridged to a real upstream (Debian's mosquitto, or another appliance): both
directions with remapping, QoS 0/1/2, retained messages, MQTT 3.1.1 and 5.0, several
bridges at once, and no loops when local and remote filters overlap."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest

from tests.conftest import TIMEOUT

PROTOCOLS = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}


def bridge_block(name: str, port: int, proto_ver: int = 4, body: str = "", scheme: str = "mqtt-tcp") -> str:
    return (f'bridges.mqtt.{name} {{\n server = "{scheme}://127.0.0.1:{port}"\n proto_ver = {proto_ver}\n'
            f' clientid = "bridge-{name}"\n backoff_min = 100ms\n backoff_max = 500ms\n{body}\n}}\n')


def connected(appliance, name: str = "up") -> None:
    appliance.wait_for_log(rf"bridge {name}: connected to ")


@pytest.fixture(params=["mosquitto", "appliance"])
def upstream(request, mosquitto_factory, broker_factory):
    """Something with a `.port` that speaks MQTT on 127.0.0.1."""
    return mosquitto_factory() if request.param == "mosquitto" else broker_factory()


@pytest.mark.parametrize("proto_ver", [3, 4, 5])
def test_forwards_and_subscriptions_remap_both_ways_at_every_qos(proto_ver, upstream, broker_factory, mqtt):
    appliance = broker_factory(bridge_block("up", upstream.port, proto_ver, """
 forwards = [
   { local_topic = "sensors/+/temp", remote_topic = "site1/+/t" },
   { local_topic = "raw/#", remote_topic = "" , prefix = "edge/" },
 ]
 subscription = [
   { remote_topic = "+/cmd/#", local_topic = "commands/#", qos = 2 },
 ]
"""))
    connected(appliance)
    protocol = PROTOCOLS[proto_ver]
    cloud = mqtt(upstream.port, "cloud", protocol=protocol)
    cloud.connect()
    cloud.subscribe("site1/#", qos=2)
    cloud.subscribe("edge/#", qos=2)
    local = mqtt(appliance.port, "local", protocol=protocol)
    local.connect()
    local.subscribe("commands/#", qos=2)

    for qos in (0, 1, 2):
        local.publish("sensors/room1/temp", f"t{qos}", qos=qos)
        message = cloud.expect_message()
        assert (message.topic, message.payload, message.qos) == ("site1/room1/t", f"t{qos}".encode(), qos)
        local.publish("raw/a/b", f"r{qos}", qos=qos)
        message = cloud.expect_message()
        assert (message.topic, message.payload, message.qos) == ("edge/raw/a/b", f"r{qos}".encode(), qos)

        cloud.publish("dev9/cmd/reboot/now", f"c{qos}", qos=qos)
        message = local.expect_message()
        assert (message.topic, message.payload, message.qos) == ("commands/reboot/now", f"c{qos}".encode(), qos)


def test_forward_qos_and_retain_overrides_and_retained_from_upstream(mosquitto_factory, broker_factory, mqtt):
    upstream = mosquitto_factory()
    seed = mqtt(upstream.port, "seed")
    seed.connect()
    seed.publish("config/device", "v1", qos=1, retain=True)  # retained before the bridge subscribes
    appliance = broker_factory(bridge_block("up", upstream.port, 4, """
 forwards = [ { local_topic = "state/#", qos = 1, retain = 1 } ]
 subscription = [ { remote_topic = "config/#", qos = 1 } ]
"""))
    connected(appliance)
    early = mqtt(appliance.port, "early")
    early.connect()
    early.subscribe("config/#", qos=1)
    assert early.expect_message().payload == b"v1"  # it has crossed the bridge (live, or retained)
    # It was republished locally as retained: a subscriber that comes later still gets it.
    local = mqtt(appliance.port, "late")
    local.connect()
    local.subscribe("config/#", qos=1)
    message = local.expect_message()
    assert (message.topic, message.payload, message.retain) == ("config/device", b"v1", True)

    cloud = mqtt(upstream.port, "cloud")
    cloud.connect()
    cloud.subscribe("state/#", qos=1)
    local.publish("state/x", "on", qos=0)
    message = cloud.expect_message()
    assert (message.topic, message.payload, message.qos) == ("state/x", b"on", 1)  # QoS raised by the rule
    late_cloud = mqtt(upstream.port, "late-cloud")
    late_cloud.connect()
    late_cloud.subscribe("state/#", qos=1)  # only a retained copy can reach it now
    message = late_cloud.expect_message()
    assert (message.topic, message.payload, message.retain) == ("state/x", b"on", True)


@pytest.mark.parametrize("proto_ver", [4, 5])
def test_overlapping_filters_do_not_loop(proto_ver, upstream, broker_factory, mqtt):
    appliance = broker_factory(bridge_block("up", upstream.port, proto_ver, """
 forwards = [ "shared/#" ]
 subscription = [ { remote_topic = "shared/#", qos = 1 } ]
"""))
    connected(appliance)
    protocol = PROTOCOLS[proto_ver]
    local = mqtt(appliance.port, "local", protocol=protocol)
    local.connect()
    local.subscribe("shared/#", qos=1)
    cloud = mqtt(upstream.port, "cloud", protocol=protocol)
    cloud.connect()
    cloud.subscribe("shared/#", qos=1)

    local.publish("shared/a", "from-edge", qos=1)
    assert cloud.expect_message().payload == b"from-edge"
    assert local.expect_message().payload == b"from-edge"  # the local copy, not an echo
    cloud.publish("shared/b", "from-cloud", qos=1)
    assert local.expect_message().payload == b"from-cloud"
    assert cloud.expect_message().payload == b"from-cloud"  # the upstream's own delivery
    # Had anything looped, another copy would be on its way: a marker sent after everything
    # above arrives first only if nothing else is in flight on either side.
    cloud.publish("shared/marker", "m", qos=1)
    assert cloud.expect_message().topic == "shared/marker"
    assert local.expect_message().topic == "shared/marker"
    local.expect_no_message()
    cloud.expect_no_message()


def test_several_bridges_at_once(mosquitto_factory, broker_factory, mqtt):
    first, second = mosquitto_factory(), mosquitto_factory()
    appliance = broker_factory(
        bridge_block("one", first.port, 4, ' forwards = [ "telemetry/#" ]')
        + bridge_block("two", second.port, 5, ' forwards = [ { local_topic = "telemetry/#", prefix = "b/" } ]'))
    connected(appliance, "one")
    connected(appliance, "two")
    clouds = []
    for upstream in (first, second):
        cloud = mqtt(upstream.port, f"cloud-{upstream.port}")
        cloud.connect()
        cloud.subscribe("#", qos=1)
        clouds.append(cloud)
    local = mqtt(appliance.port, "local")
    local.connect()
    local.publish("telemetry/1", "x", qos=1)
    assert clouds[0].expect_message(TIMEOUT).topic == "telemetry/1"
    assert clouds[1].expect_message(TIMEOUT).topic == "b/telemetry/1"


def test_two_bridges_to_one_upstream_with_crossing_rules_do_not_loop(mosquitto_factory, broker_factory, mqtt):
    upstream = mosquitto_factory()
    appliance = broker_factory(
        bridge_block("up", upstream.port, 5, ' forwards = [ "x/#" ]')
        + bridge_block("down", upstream.port, 5, ' subscription = [ { remote_topic = "x/#", qos = 1 } ]'))
    connected(appliance, "up")
    connected(appliance, "down")
    cloud = mqtt(upstream.port, "cloud", protocol=paho.MQTTv5)
    cloud.connect()
    cloud.subscribe("x/#", qos=1)
    local = mqtt(appliance.port, "local", protocol=paho.MQTTv5)
    local.connect()
    local.subscribe("x/#", qos=1)
    local.publish("x/1", "once", qos=1)
    assert cloud.expect_message().payload == b"once"
    assert local.expect_message().payload == b"once"  # the local delivery
    assert local.expect_message().payload == b"once"  # brought back down by "down": a copy, once
    cloud.publish("x/marker", "m", qos=1)
    assert cloud.expect_message().topic == "x/marker"
    assert local.expect_message().topic == "x/marker"
    local.expect_no_message()
    cloud.expect_no_message()
