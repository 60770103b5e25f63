"""What the protocol core asks the I/O shell, and the verdicts it gets back.

A `Client` never calls access control itself (it may block on an HTTP service), nor waits
for the disk: it returns a question from `receive_data` and waits, holding whatever the
client sends meanwhile, until the shell hands the verdict to `Client.answer`. The shell
that answers is `appliance.listeners.gate.Gate`; in-process tests answer with their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hooks import ClientInfo


@dataclass(frozen=True, slots=True)
class Authenticate:
    """May this client connect? Answered with an `AuthVerdict`."""

    client: ClientInfo
    password: bytes | None
    cert_username: str | None  # a verified client certificate's CN (peer_cert_as_username)
    facts: dict  # what http_auth may ask about the connection: %p, %C, %d
    will_topic: str | None  # asked too: a will the ACL forbids is discarded


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    reason_code: int  # MQTT 5 CONNACK code, 0 = accepted
    why: str = ""  # for the log
    acl: object | None = None  # the client's ACL (`auth.access.ClientAcl`); None: no restrictions
    will_allowed: bool = True
    superuser: bool = False  # kept by the client, so a reload knows it needs no ACL


@dataclass(frozen=True, slots=True)
class Authorize:
    """May the client publish to / subscribe to these topics? Answered with a tuple of
    bools, one per topic."""

    acl: object  # the ClientAcl the verdict of Authenticate gave
    action: str  # auth.acl.PUBLISH or SUBSCRIBE
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AwaitDurable:
    """Is everything recorded so far durable? Asked before a SUBACK or UNSUBACK that
    changed a persistent session, so a crash never forgets a subscription the client was
    told about. Answered (with None) once `barrier` says so."""

    barrier: object  # broker.durability.Barrier


Question = Authenticate | Authorize | AwaitDurable
