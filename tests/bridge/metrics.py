"""Read the appliance's /metrics (and other HTTP endpoints) the way Prometheus would."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

AUTH = "Basic " + base64.b64encode(b"admin:test-secret").decode()  # tests/conftest.py BASE_CONFIG


@dataclass
class Response:
    status: int
    body: str


def http_get(appliance, path: str) -> Response:
    request = urllib.request.Request(f"http://127.0.0.1:{appliance.http_port}{path}", headers={"Authorization": AUTH})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Response(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read().decode())


def bridge_metrics(appliance, bridge: str = "up") -> dict[str, float]:
    """appliance_bridge_* samples of one bridge: 'name' or 'name{other="label"}' -> value."""
    text = http_get(appliance, "/metrics").body
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("appliance_bridge_") or sample.labels.get("bridge") != bridge:
                continue
            others = {k: v for k, v in sample.labels.items() if k != "bridge"}
            key = sample.name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(others.items())) + "}"
                                 if others else "")
            found[key] = sample.value
    return found
