"""Helpers for the security tests: CONNECT with credentials over raw sockets, and files next
to the broker's config (NanoMQ resolves `include` relative to nanomq.conf)."""

from __future__ import annotations

from appliance.mqtt.packets import Connect

from tests.broker.raw import RawClient


def connack(port: int, client_id: str, username: str | None = None, password: bytes | None = None,
            version: int = 5, will=None) -> tuple[int, RawClient]:
    """CONNECT with these credentials; the CONNACK's code as sent (v3: the return code)."""
    raw = RawClient(port, client_id, version=version, connect=False)
    raw.send(Connect(client_id, version, username=username, password=password, will=will))
    return raw.expect("ConnAck").reason_code, raw


def connected(port: int, client_id: str, username: str | None = None, password: bytes | None = None,
              version: int = 5) -> RawClient:
    code, raw = connack(port, client_id, username, password, version)
    assert code == 0, f"CONNACK 0x{code:02x}"
    return raw


def auth_block(tmp_path, passwords: str = "", acl: str = "", options: str = "") -> str:
    """An auth block whose password and ACL files sit next to the broker's config file."""
    parts = [options]
    if passwords:
        (tmp_path / "nanomq_pwd.conf").write_text(passwords)
        parts.append('password = {include "nanomq_pwd.conf"}')
    if acl:
        (tmp_path / "nanomq_acl.conf").write_text(acl)
        parts.append('acl = {include "nanomq_acl.conf"}')
    return "auth {\n" + "\n".join(parts) + "\n}\n"


def metric(broker, name: str, **labels) -> float:
    """A sample from the broker's /metrics, read with Prometheus' own parser (0 if absent)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
