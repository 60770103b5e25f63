"""Shared fixtures: the real broker as a subprocess on port 0, and real MQTT clients.

`broker_factory(config_text)` starts `python -m appliance` with the given HOCON appended to
a loopback-only base config and discovers the ports it bound from its log lines. `mqtt`
makes paho-mqtt clients that connect to it and are torn down after the test.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0  # seconds any single awaited event may take before the test fails

BASE_CONFIG = """\
listeners.tcp { bind = "127.0.0.1:0" }
http_server { bind = "127.0.0.1", port = 0, username = admin, password = "test-secret" }
log { to = [console], level = info }
"""

_LISTENING = re.compile(r"(MQTT listener (\S+)|HTTP server) listening on (\S+):(\d+)")


class BrokerProcess:
    """A broker subprocess; its stderr is read line by line so tests can await log lines."""

    def __init__(self, config_path: Path, env: dict | None = None, listeners: int = 1,
                 http: bool = True, command: tuple = ()) -> None:
        self.config_path = config_path
        self.mqtt_ports: dict[str, int] = {}
        self.http_port: int | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", *command, "--conf", str(config_path)],
            cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        expected = listeners + (1 if http else 0)
        if not self.wait_for(lambda: len(self.mqtt_ports) + (self.http_port is not None) >= expected):
            self.kill()
            raise AssertionError("broker did not start:\n" + self.logs())

    @property
    def port(self) -> int:
        """The port of the first MQTT listener."""
        return next(iter(self.mqtt_ports.values()))

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            match = _LISTENING.search(line)
            with self._changed:
                if match and match.group(2):
                    self.mqtt_ports[match.group(2)] = int(match.group(4))
                elif match:
                    self.http_port = int(match.group(4))
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = TIMEOUT) -> bool:
        """Wait until `predicate()` holds (re-checked at every new log line) or the process ends."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate() or self.proc.poll() is not None,
                                          timeout) and predicate()

    def wait_for_log(self, pattern: str, timeout: float = TIMEOUT) -> str:
        regex = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self._lines if regex.search(line)]
            return bool(found)

        assert self.wait_for(seen, timeout), f"no log line matching {pattern!r}:\n{self.logs()}"
        return found[0]

    def logs(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def broker_factory(tmp_path):
    """Start brokers with extra HOCON config; every one is stopped after the test."""
    started: list[BrokerProcess] = []

    def start(config_text: str = "", env: dict | None = None, base: str = BASE_CONFIG,
              listeners: int = 1, http: bool = True, command: tuple = ()) -> BrokerProcess:
        path = tmp_path / f"nanomq-{len(started)}.conf"
        path.write_text(base + config_text)
        broker = BrokerProcess(path, env, listeners, http, command)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        try:
            broker.stop(timeout=5)
        except subprocess.TimeoutExpired:
            broker.kill()


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    """A broker with the base configuration."""
    return broker_factory()


class MqttClient:
    """A paho-mqtt client whose every operation waits for the broker's answer."""

    def __init__(self, port: int, client_id: str = "", protocol=paho.MQTTv311, clean: bool = True,
                 manual_ack: bool = False, **connect_args) -> None:
        self.port = port
        self.messages: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self._acks: dict[int, threading.Event] = {}
        self._ack_results: dict[int, object] = {}
        self._connack: queue.Queue = queue.Queue()
        # No automatic reconnects: a test decides when a client comes back.
        kwargs = {"client_id": client_id, "protocol": protocol, "manual_ack": manual_ack,
                  "reconnect_on_failure": False}
        if protocol != paho.MQTTv5:
            kwargs["clean_session"] = clean
        self.client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.protocol = protocol
        self.clean = clean
        self.connect_args = connect_args
        self.client.on_connect = lambda c, u, flags, rc, props: self._connack.put((flags, rc, props))
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_ack
        self.client.on_unsubscribe = self._on_ack
        self.client.on_publish = lambda c, u, mid, rc, props: self._ack(mid, rc)
        self.client.on_disconnect = lambda c, u, flags, rc, props: self.disconnects.put(rc)

    def _on_ack(self, client, userdata, mid, reason_codes, properties) -> None:
        self._ack(mid, [code.value for code in reason_codes])

    def _ack(self, mid: int, result) -> None:
        self._ack_results[mid] = result
        self._acks.setdefault(mid, threading.Event()).set()

    def _wait_ack(self, mid: int):
        assert self._acks.setdefault(mid, threading.Event()).wait(TIMEOUT), f"no ack for mid {mid}"
        return self._ack_results.pop(mid)

    def connect(self, will=None, properties=None):
        """Connect and return (flags, reason_code, properties) of the CONNACK."""
        if will is not None:
            self.client.will_set(**will)
        args = {"keepalive": 60, **self.connect_args}
        if self.protocol == paho.MQTTv5:
            args["clean_start"] = self.clean
            args["properties"] = properties
        self.client.connect("127.0.0.1", self.port, **args)
        self.client.loop_start()
        return self._connack.get(timeout=TIMEOUT)

    def subscribe(self, topic: str, qos: int = 0, **kwargs):
        if self.protocol == paho.MQTTv5 and "options" not in kwargs:
            from paho.mqtt.subscribeoptions import SubscribeOptions
            kwargs["options"] = SubscribeOptions(qos=qos)
            result, mid = self.client.subscribe(topic, **kwargs)
        else:
            result, mid = self.client.subscribe(topic, qos, **kwargs)
        assert result == paho.MQTT_ERR_SUCCESS
        return self._wait_ack(mid)

    def unsubscribe(self, topic: str):
        result, mid = self.client.unsubscribe(topic)
        assert result == paho.MQTT_ERR_SUCCESS
        return self._wait_ack(mid)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                properties=None):
        info = self.client.publish(topic, payload, qos, retain, properties)
        if qos:
            return self._wait_ack(info.mid)
        info.wait_for_publish(TIMEOUT)
        return None

    def expect_message(self, timeout: float = TIMEOUT):
        return self.messages.get(timeout=timeout)

    def expect_no_message(self) -> None:
        """Assert nothing arrived. The caller first makes sure the publisher's messages were
        routed (QoS 1 acknowledged, or its own `roundtrip()`); this client's round trip then
        proves that anything routed to it would already be here."""
        self.roundtrip()
        assert self.messages.empty(), f"unexpected message {self.messages.get_nowait().topic}"

    def roundtrip(self) -> None:
        """Wait until the broker has handled everything this client sent so far (a QoS 1
        publish to a private topic is acknowledged only after everything before it)."""
        self.publish(f"$roundtrip/{id(self)}", b"", qos=1)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def close(self) -> None:
        """Drop the connection without a DISCONNECT, as a crashed client would."""
        sock = self.client.socket()
        if sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # also wakes paho's loop thread at once
            except OSError:
                pass
        self.client.loop_stop()
        if sock:
            sock.close()


@pytest.fixture
def mqtt():
    """Factory of connected-on-demand MQTT clients, all closed after the test."""
    made: list[MqttClient] = []

    def make(port: int, client_id: str = "", **kwargs) -> MqttClient:
        client = MqttClient(port, client_id, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def raw_socket(port: int) -> socket.socket:
    """A plain TCP connection to the broker for byte-level tests."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return sock
