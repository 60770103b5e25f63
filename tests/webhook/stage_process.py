"""Drives `stage_runner.py` (a WebhookStage in its own gevent-patched process) from a test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import queue
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

RUNNER = Path(__file__).with_name("stage_runner.py")
REPO = Path(__file__).resolve().parents[2]


class StageProcess:
    def __init__(self, url: str, rules=None, **config) -> None:
        config = {"url": url, "rules": rules if rules is not None else [{"event": "on_message_publish"}],
                  **config}
        self.log = tempfile.NamedTemporaryFile("w+", prefix="webhook-stage-", suffix=".log")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, str(RUNNER), json.dumps(config)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=REPO)
        self.acked: list = []  # tags of `durable()` requests answered, in the order answered
        self._acks = threading.Condition()
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._reply().get("ready"), self.logs()

    def _read(self) -> None:
        for line in self.proc.stdout:
            reply = json.loads(line)
            if "durable" in reply:
                with self._acks:
                    self.acked.append(reply["durable"])
                    self._acks.notify_all()
            else:
                self._replies.put(reply)
        self._replies.put(None)

    def wait_acked(self, count: int, timeout: float = 20.0) -> list:
        with self._acks:
            if not self._acks.wait_for(lambda: len(self.acked) >= count, timeout):
                raise AssertionError(f"{len(self.acked)} of {count} durability answers in {timeout} s")
            return list(self.acked)

    def _send(self, command: dict) -> None:
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()

    def _reply(self) -> dict:
        reply = self._replies.get(timeout=60)
        if reply is None:
            raise AssertionError(f"stage process ended (rc={self.proc.poll()}):\n{self.logs()}")
        return reply

    def connack(self, client: dict, rc: int = 0) -> None:
        self._send({"op": "connack", "client": client, "rc": rc})

    def disconnected(self, client: dict, reason: str) -> None:
        self._send({"op": "disconnected", "client": client, "reason": reason})

    def publish(self, client: dict | None, message: dict, count: int = 1) -> None:
        self._send({"op": "publish", "client": client, "message": message, "count": count})

    def durable(self, tag) -> None:
        """Ask to hear `{"durable": tag}` once everything sent so far is on disk (`acks()`)."""
        self._send({"op": "durable", "tag": tag})

    def kill(self) -> None:
        """kill -9: no drain, no last commit."""
        self.proc.kill()
        self.proc.wait()

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample as {(name, sorted label items): value}."""
        self._send({"op": "metrics"})
        text = self._reply()["metrics"]
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def wait_metrics(self, predicate, timeout: float = 20.0) -> dict:
        """Scrape until `predicate(metrics)` holds; returns those metrics."""
        deadline = time.monotonic() + timeout
        while True:
            metrics = self.metrics()
            if predicate(metrics):
                return metrics
            if time.monotonic() > deadline:
                raise AssertionError(f"metrics condition not met in {timeout} s:\n{metrics}")
            time.sleep(0.02)  # scraping is cheap, but the stage has work to do

    def stop(self, timeout: float) -> None:
        self._send({"op": "stop", "timeout": timeout})
        assert self._reply().get("stopped"), self.logs()
        self.proc.wait(10)

    def terminate(self) -> int:
        """SIGTERM, as docker stop sends, once every command sent so far has been handled (they
        travel over a pipe, the signal does not, and it must not overtake them); returns the
        exit status."""
        self.metrics()
        self.proc.send_signal(signal.SIGTERM)
        assert self._reply().get("stopped"), self.logs()
        return self.proc.wait(30)

    def logs(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sample(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)
