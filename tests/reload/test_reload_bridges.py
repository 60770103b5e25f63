"""A reload starts added bridges, restarts changed ones and stops removed ones, against a
real upstream (a second appliance), while local clients stay connected."""

from tests.bridge.test_bridge_mosquitto import bridge_block
from tests.reload.reload_helpers import rewrite, sighup


def test_bridges_are_added_changed_and_removed_by_reloads(broker_factory, mqtt):
    upstream = broker_factory()
    appliance = broker_factory()
    local = mqtt(appliance.port, "local")
    local.connect()
    cloud = mqtt(upstream.port, "cloud")
    cloud.connect()
    cloud.subscribe("#", qos=1)

    rewrite(appliance, bridge_block("up", upstream.port, 4, ' forwards = [ "x/#" ]'))
    assert "bridges.mqtt.up" in sighup(appliance)
    appliance.wait_for_log(r"bridge up: connected to ")
    local.publish("x/1", b"one", qos=1)
    assert cloud.expect_message().topic == "x/1"

    rewrite(appliance, bridge_block("up", upstream.port, 4, ' forwards = [ "y/#" ]'))
    assert "bridges.mqtt.up" in sighup(appliance)
    appliance.wait_for(lambda: appliance.logs().count("bridge up: connected to ") >= 2)
    local.publish("x/2", b"two", qos=1)
    local.publish("y/1", b"three", qos=1)
    message = cloud.expect_message()
    assert (message.topic, message.payload) == ("y/1", b"three")

    rewrite(appliance, "")
    assert "bridges.mqtt.up" in sighup(appliance)
    local.publish("y/2", b"four", qos=1)
    cloud.expect_no_message()
    assert local.disconnects.empty()
