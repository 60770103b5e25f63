"""An MQTT broker appliance for edge hardware, with a NanoMQ-compatible WebHook stage."""

__version__ = "0.1.0"
