"""TLS for `listeners.ssl`: the server context (TLS 1.2+, mutual TLS on request) and the
handshake of one accepted socket, with gevent's ssl so it never blocks other clients."""

from __future__ import annotations

import socket

import gevent
from gevent import ssl

from ..config.model import TlsConfig


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """The context every connection of one listener is wrapped with; raises ssl.SSLError
    (an OSError) for a bad key, certificate or key_password."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.certfile, config.keyfile, password=config.key_password)
    if config.cacertfile:
        context.load_verify_locations(cafile=config.cacertfile)
    if config.verify_peer:
        context.verify_mode = ssl.CERT_REQUIRED if config.fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def handshake(context: ssl.SSLContext, sock, timeout: float, admission):
    """The TLS socket over `sock` once the handshake is done within `timeout` seconds in
    all; raises OSError (ssl.SSLError, TimeoutError, or `HandshakeRefused` when
    `admission` has limits.max_handshakes sockets in a handshake already).

    The deadline is for the whole handshake, not for each read: a ClientHello trickled one
    byte every few seconds would otherwise keep a socket, and its place, for ever."""
    if not admission.start_handshake():
        raise HandshakeRefused(f"{admission.max_handshakes} TLS handshakes in progress (limits.max_handshakes)")
    try:
        with gevent.Timeout(timeout, socket.timeout(f"no TLS handshake within {timeout:g} s")):
            tls_sock = context.wrap_socket(sock, server_side=True)
    finally:
        admission.end_handshake()
    tls_sock.settimeout(None)  # from here on the keepalive decides how long a client may be quiet
    return tls_sock


class HandshakeRefused(OSError):
    """Too many sockets are in a TLS handshake already; this one is closed unserved."""


def peer_names(tls_sock) -> tuple[str | None, str | None]:
    """(CN, subject as "CN=a,O=b") of the client certificate, if one was presented and verified."""
    cert = tls_sock.getpeercert()
    pairs = [(name, value) for rdn in (cert or {}).get("subject", ()) for name, value in rdn]
    if not pairs:
        return None, None
    common_name = next((value for name, value in pairs if name == "commonName"), None)
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}
    return common_name, ",".join(f"{short.get(name, name)}={value}" for name, value in pairs)
