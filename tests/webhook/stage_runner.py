"""Runs one WebhookStage in a gevent-patched process, as the broker would, driven by JSON
lines on stdin (one hook call, or a burst of them, per line). Used by the stage's tests.

    python stage_runner.py CONFIG_JSON     then lines like
    {"op": "connack", "client": {...}, "rc": 0}
    {"op": "publish", "client": {...} | null, "message": {...}, "count": 1}
    {"op": "disconnected", "client": {...}, "reason": "normal"}
    {"op": "metrics"}             -> one line: {"metrics": "<Prometheus text>"}
    {"op": "durable", "tag": T}   -> {"durable": T} once everything accepted before is on disk
                                     (what the broker waits for before a PUBACK)
    {"op": "stop", "timeout": 5}  -> stage.stop(timeout), then exit
SIGTERM stops the stage with its drain_timeout, as the appliance does; so does the end of stdin
(without draining: the test that drove it is gone).
"""

from gevent import monkey

monkey.patch_all()

import base64  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObjectPosix  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from appliance.broker.hooks import ClientInfo  # noqa: E402
from appliance.broker.message import Message  # noqa: E402
from appliance.config.model import (  # noqa: E402
    WebhookConfig,
    WebhookQueue,
    WebhookRetry,
    WebhookRule,
    WebhookTls,
)
from appliance.webhook import WebhookStage  # noqa: E402


def build_config(raw: dict) -> WebhookConfig:
    raw = dict(raw)
    raw["rules"] = tuple(WebhookRule(**rule, index=i) for i, rule in enumerate(raw.get("rules", ())))
    raw["headers"] = tuple(tuple(pair) for pair in raw.get("headers", ()))
    raw["tls"] = WebhookTls(**raw.get("tls", {}))
    raw["retry"] = WebhookRetry(**raw.get("retry", {}))
    raw["queue"] = WebhookQueue(**raw.get("queue", {}))
    return WebhookConfig(**raw)


def client_info(raw: dict | None) -> ClientInfo | None:
    if raw is None:
        return None
    return ClientInfo(raw["client_id"], raw.get("username"), raw.get("protocol_version", 4),
                      raw.get("keepalive", 60), ("127.0.0.1", 50000))


def message(raw: dict, index: int) -> Message:
    payload = base64.b64decode(raw["payload_b64"]) if "payload_b64" in raw else raw.get("payload", "").encode()
    if raw.get("numbered"):
        payload += str(raw.get("first", 0) + index).encode()
    return Message(raw["topic"], payload, raw.get("qos", 0), raw.get("retain", False), raw["publisher_id"],
                   raw.get("publisher_username"), raw.get("timestamp_ms", 1795844269251))


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    config = build_config(json.loads(sys.argv[1]))
    registry = CollectorRegistry()
    stage = WebhookStage(config, registry)
    stage.start()

    def terminate():
        try:
            stage.stop(config.drain_timeout)
            print(json.dumps({"stopped": True}), flush=True)
        finally:
            os._exit(0)  # even when nobody reads stdout any more

    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(terminate))
    print(json.dumps({"ready": True}), flush=True)
    for line in FileObjectPosix(sys.stdin.fileno(), "rb"):
        command = json.loads(line)
        op = command["op"]
        if op == "connack":
            stage.on_client_connack(client_info(command["client"]), command.get("rc", 0))
        elif op == "disconnected":
            stage.on_client_disconnected(client_info(command["client"]), command["reason"])
        elif op == "publish":
            client = client_info(command.get("client"))
            for index in range(command.get("count", 1)):
                stage.on_message_publish(client, message(command["message"], index))
        elif op == "durable":
            stage.when_durable(lambda tag=command["tag"]: print(json.dumps({"durable": tag}), flush=True))
        elif op == "metrics":
            print(json.dumps({"metrics": generate_latest(registry).decode()}), flush=True)
        elif op == "stop":
            stage.stop(command.get("timeout", config.drain_timeout))
            print(json.dumps({"stopped": True}), flush=True)
            return
        gevent.sleep(0)  # a broker yields between packets; so do we
    stage.stop(0)  # stdin closed: the test is gone, so are we


if __name__ == "__main__":
    main()
