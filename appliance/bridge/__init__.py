"""MQTT bridges to upstream brokers: NanoMQ's `bridges.mqtt.<name>` blocks.

Kept free of imports so `appliance.config` can use `appliance.bridge.topics` (the remapping
rules) without loading the rest; app.py imports `appliance.bridge.bridge.Bridges`.
"""
