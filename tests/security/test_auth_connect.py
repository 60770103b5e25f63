"""Authentication at CONNECT: NanoMQ's password file (plaintext and hashed entries),
allow_anonymous, and the CONNACK codes and metrics of each refusal."""

import pytest

from appliance.auth.passwords import hash_password
from security_helpers import auth_block, connack, connected, metric

PASSWORDS = f"""\
# # Write "username":"password" in this way.
admin: public
"device-1": "{hash_password('d3v1ce', iterations=1000)}"
"""


@pytest.fixture
def secured(broker_factory, tmp_path):
    return broker_factory(auth_block(tmp_path, PASSWORDS, options="allow_anonymous = false"))


@pytest.mark.parametrize("version", [4, 5])
def test_right_plaintext_and_hashed_passwords_connect(secured, version):
    connected(secured.port, f"a{version}", "admin", b"public", version)
    connected(secured.port, f"d{version}", "device-1", b"d3v1ce", version)


@pytest.mark.parametrize("version, expected", [(5, 0x86), (4, 4), (3, 4)])
def test_wrong_password_is_refused_with_bad_credentials(secured, version, expected):
    code, raw = connack(secured.port, "x", "device-1", b"public", version)
    assert code == expected
    assert raw.expect_closed() == b""


@pytest.mark.parametrize("version, expected", [(5, 0x87), (4, 5)])
def test_anonymous_client_is_refused_as_not_authorized(secured, version, expected):
    code, _ = connack(secured.port, "anon", None, None, version)
    assert code == expected


def test_unknown_user_is_refused_when_anonymous_access_is_off(secured):
    code, _ = connack(secured.port, "who", "mallory", b"public")
    assert code == 0x86


def test_anonymous_allowed_still_checks_known_users(broker_factory, tmp_path):
    broker = broker_factory(auth_block(tmp_path, PASSWORDS, options="allow_anonymous = true"))
    connected(broker.port, "anon")
    connected(broker.port, "stranger", "someone-else", b"x")  # unknown to the file: anonymous
    code, _ = connack(broker.port, "imposter", "admin", b"wrong")
    assert code == 0x86


def test_refusals_are_counted_and_passwords_never_logged(secured, mqtt):
    connack(secured.port, "bad", "admin", b"not-the-password-XYZ")
    connack(secured.port, "anon", None, None)
    connected(secured.port, "good", "admin", b"public")
    secured.wait_for_log(r"refusing anon@")
    logs = secured.logs()
    assert "not-the-password-XYZ" not in logs and "public" not in logs
    assert "refusing bad@127.0.0.1" in logs and "wrong password" in logs
    assert metric(secured, "appliance_connections_refused_total", reason="bad_credentials") == 1
    assert metric(secured, "appliance_connections_refused_total", reason="not_authorized") == 1


def test_environment_turns_anonymous_access_off(broker_factory):
    broker = broker_factory(env={"NANOMQ_ALLOW_ANONYMOUS": "false"})
    code, _ = connack(broker.port, "anon", None, None)
    assert code == 0x87
