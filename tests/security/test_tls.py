"""`listeners.ssl`: MQTT over TLS 1.2+, mutual TLS, and the client certificate's CN as
username, against real handshakes with certificates made for the test."""

import select
import socket
import ssl
import time

import pytest

from appliance.mqtt.packets import Connect
from tls_pki import Pki
from security_helpers import auth_block, metric
from tests.broker.raw import RawClient
from tests.conftest import TIMEOUT


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def ssl_listener(pki, extra=""):
    return (f'listeners.ssl {{\n bind = "127.0.0.1:0"\n certfile = "{pki.server_cert}"\n'
            f' keyfile = "{pki.server_key}"\n cacertfile = "{pki.ca}"\n{extra}\n}}\n')


def tls_client(port, pki, client_id, cert=None, key=None, username=None, password=None):
    """A RawClient over TLS, verifying the broker's certificate; returns (CONNACK code, client)."""
    context = ssl.create_default_context(cafile=pki.ca)
    if cert:
        context.load_cert_chain(cert, key)
    raw = RawClient(port, client_id, version=5, connect=False)
    raw.sock = context.wrap_socket(raw.sock, server_hostname="127.0.0.1")
    raw.send(Connect(client_id, 5, username=username, password=password))
    return raw.expect("ConnAck").reason_code, raw


def test_tls_listener_serves_mqtt_with_tls_1_2_or_newer(broker_factory, pki):
    broker = broker_factory(ssl_listener(pki), listeners=2)
    port = broker.mqtt_ports["ssl"]
    code, sub = tls_client(port, pki, "sub")
    assert code == 0 and sub.sock.version() in ("TLSv1.2", "TLSv1.3")
    sub.subscribe("secure/#", 1)
    _, pub = tls_client(port, pki, "pub")
    pub.publish("secure/a", b"over tls", qos=1, packet_id=1)
    assert pub.expect("PubAck").packet_id == 1
    assert sub.expect("Publish").payload == b"over tls"
    plain = RawClient(broker.mqtt_ports["tcp"], "plain")  # the TCP listener is unaffected
    plain.roundtrip()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_is_refused(broker_factory, pki):
    # This client does complete a TLS 1.1 handshake with a server that allows it.
    broker = broker_factory(ssl_listener(pki), listeners=2)
    context = ssl.create_default_context(cafile=pki.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", broker.mqtt_ports["ssl"]), timeout=TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(sock, server_hostname="127.0.0.1")


def test_mutual_tls_refuses_a_client_without_a_certificate(broker_factory, pki):
    broker = broker_factory(ssl_listener(pki, "verify_peer = true\nfail_if_no_peer_cert = true"), listeners=2)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_client(broker.mqtt_ports["ssl"], pki, "nocert")
    broker.wait_for_log("TLS handshake with 127.0.0.1:\\d+ failed")


def test_mutual_tls_refuses_a_certificate_from_an_unknown_ca(broker_factory, pki):
    broker = broker_factory(ssl_listener(pki, "verify_peer = true\nfail_if_no_peer_cert = true"), listeners=2)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_client(broker.mqtt_ports["ssl"], pki, "rogue", pki.rogue_cert, pki.rogue_key)


def test_mutual_tls_accepts_a_certificate_from_the_ca(broker_factory, pki):
    broker = broker_factory(ssl_listener(pki, "verify_peer = true\nfail_if_no_peer_cert = true"), listeners=2)
    code, _ = tls_client(broker.mqtt_ports["ssl"], pki, "device", pki.client_cert, pki.client_key)
    assert code == 0


def test_certificate_cn_is_the_username_and_authenticates_it(broker_factory, pki, tmp_path):
    acl = 'rules = [{permit = allow, topics = ["devices/${username}/#"]}]'
    broker = broker_factory(
        ssl_listener(pki, "verify_peer = true\npeer_cert_as_username = cn")
        + auth_block(tmp_path, acl=acl, options="allow_anonymous = false\nno_match = deny"), listeners=2)
    port = broker.mqtt_ports["ssl"]
    code, device = tls_client(port, pki, "d7", pki.client_cert, pki.client_key, username="someone-else")
    assert code == 0
    assert device.subscribe("devices/device-7/cmd", 1) == [1]  # the CN, not the CONNECT username
    assert device.subscribe("devices/someone-else/cmd", 1) == [0x87]
    code, _ = tls_client(port, pki, "anon")  # verify_peer without fail_if_no_peer_cert: may connect
    assert code == 0x87  # ... but is anonymous, and anonymous access is off


def test_encrypted_key_is_opened_with_key_password(broker_factory, tmp_path):
    pki = Pki(tmp_path, key_password=b"k3y-pass")
    broker = broker_factory(ssl_listener(pki, 'key_password = "k3y-pass"'), listeners=2)
    code, _ = tls_client(broker.mqtt_ports["ssl"], pki, "c")
    assert code == 0
    assert "k3y-pass" not in broker.logs()


def test_wrong_key_password_stops_start_up_without_showing_it(broker_factory, tmp_path):
    pki = Pki(tmp_path, key_password=b"k3y-pass")
    with pytest.raises(AssertionError, match="broker did not start") as failure:
        broker_factory(ssl_listener(pki, 'key_password = "wr0ng-pass"'), listeners=2)
    assert "cannot start" in str(failure.value) and "wr0ng-pass" not in str(failure.value)


def test_silent_tls_client_is_cut_at_connect_timeout(broker_factory, pki):
    broker = broker_factory("mqtt { connect_timeout = 1s }\n" + ssl_listener(pki), listeners=2)
    with socket.create_connection(("127.0.0.1", broker.mqtt_ports["ssl"]), timeout=TIMEOUT) as sock:
        assert sock.recv(16) == b""  # no ClientHello: closed, not held
    broker.wait_for_log("TLS handshake with .* failed")


def test_an_idle_tls_client_outlives_the_connect_timeout(broker_factory, pki):
    broker = broker_factory("mqtt { connect_timeout = 1s }\n" + ssl_listener(pki), listeners=2)
    code, idle = tls_client(broker.mqtt_ports["ssl"], pki, "idle")
    assert code == 0
    with socket.create_connection(("127.0.0.1", broker.mqtt_ports["ssl"]), timeout=TIMEOUT) as silent:
        assert silent.recv(16) == b""  # the connect timeout has now passed for `idle` too
    idle.roundtrip()  # the handshake's timeout must not be left on the connected socket


def test_environment_configures_the_tls_listener(broker_factory, pki):
    env = {"NANOMQ_TLS_ENABLE": "true", "NANOMQ_TLS_URL": "tls+nmq-tcp://127.0.0.1:0",
           "NANOMQ_TLS_CERT_PATH": pki.server_cert, "NANOMQ_TLS_KEY_PATH": pki.server_key,
           "NANOMQ_TLS_CA_CERT_PATH": pki.ca}
    broker = broker_factory(env=env, listeners=2)
    code, _ = tls_client(broker.mqtt_ports["ssl"], pki, "env")
    assert code == 0


def client_hello() -> bytes:
    """The bytes of a real TLS ClientHello, for clients that send it slowly."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def closed(sock, timeout):
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_slow_tls_handshakes_cannot_take_every_place_nor_last_past_connect_timeout(broker_factory, pki):
    # The TLS slowloris: sockets that trickle a ClientHello, each byte well within the
    # timeout. At most limits.max_handshakes (default half of max_connections) handshake at
    # once, and each gets connect_timeout for the whole handshake.
    broker = broker_factory("limits { max_connections = 10 }\nmqtt { connect_timeout = 3s }\n"
                            + ssl_listener(pki), listeners=2)
    hello = client_hello()
    slow = [socket.create_connection(("127.0.0.1", broker.mqtt_ports["ssl"])) for _ in range(10)]
    started = time.monotonic()
    for sock in slow:
        sock.sendall(hello[:1])
    refused = slow[5:]  # accepted last, over max_handshakes: closed at once
    assert all(closed(sock, TIMEOUT) for sock in refused)
    assert not any(closed(sock, 0) for sock in slow[:5])
    plain = RawClient(broker.mqtt_ports["tcp"], "plain")  # a place is left for everyone else
    plain.roundtrip()
    handshaking = [sock for sock in slow if sock not in refused]
    for byte in hello[1:]:
        for sock in list(handshaking):
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                pass
        readable, _, _ = select.select(handshaking, [], [], 0.5)  # one byte every 0.5 s
        handshaking = [sock for sock in handshaking if sock not in readable or not closed(sock, 0)]
        if not handshaking or time.monotonic() - started > 3 + 2:
            break
    assert not handshaking, "a trickled handshake outlived connect_timeout"
    assert metric(broker, "appliance_limits_hit_total", limit="max_handshakes") == 5
    code, client = tls_client(broker.mqtt_ports["ssl"], pki, "after")  # TLS serves again
    assert code == 0
    for sock in slow:
        sock.close()
