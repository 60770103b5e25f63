"""Rewrite a running broker's config file and make it reload: SIGHUP (awaiting its one
log line) or POST /api/v4/reload (its answer)."""

from __future__ import annotations

import base64
import json
import signal
import urllib.error
import urllib.request

from tests.conftest import BASE_CONFIG

RELOAD_LINE = r"configuration (reloaded|reload failed)"


def rewrite(broker, text: str, base: str = BASE_CONFIG) -> None:
    broker.config_path.write_text(base + text)


def reload_lines(broker) -> list[str]:
    return [line for line in broker.logs().splitlines() if "appliance.reload" in line]


def sighup(broker) -> str:
    """Send SIGHUP and return the reload's one log line."""
    wait_ready(broker)  # a SIGHUP during start-up is ignored
    before = len(reload_lines(broker))
    broker.proc.send_signal(signal.SIGHUP)
    assert broker.wait_for(lambda: len(reload_lines(broker)) > before), f"no reload line:\n{broker.logs()}"
    return reload_lines(broker)[before]


def wait_ready(broker) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/readyz", timeout=10) as response:
        assert response.status == 200


def post_reload(broker, password: str = "test-secret") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{broker.http_port}/api/v4/reload", data=b"", method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
