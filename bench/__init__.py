"""Loopback benchmark of the appliance's MQTT broker against mosquitto (run: bench/run.sh)."""
