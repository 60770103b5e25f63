"""The I/O shell's answers to the questions of the protocol core (`broker/questions.py`).

The core never calls access control: a CONNECT (and, with an ACL, a PUBLISH or SUBSCRIBE)
becomes a question its connection hands here, and the verdict goes back to
`Client.answer`; so does its wait for a commit before a persistent session's SUBACK. Asking
may block (http_auth is an HTTP request, a commit an fsync), but only the worker greenlet of
the asking connection waits: no other client does, and the protocol code itself never
blocks.
"""

from __future__ import annotations

from gevent.event import Event

from ..auth.acl import PUBLISH
from ..broker.questions import Authenticate, Authorize, AuthVerdict, AwaitDurable


class Gate:
    def __init__(self, access) -> None:
        self._access = access  # an auth.AccessControl, or None: nothing is ever asked

    def use(self, access) -> None:
        """A reload added, replaced or removed the auth block."""
        self._access = access

    def answer(self, question: Authenticate | Authorize | AwaitDurable):
        if type(question) is AwaitDurable:
            durable = Event()
            question.barrier.when_durable(durable.set)
            durable.wait()
            return None
        if type(question) is Authorize:
            acl = question.acl
            return tuple(acl.allows(question.action, topic) for topic in question.topics)
        access = self._access
        verdict = access.authenticate(question.client, question.password, question.cert_username, question.facts)
        if verdict.reason_code:
            return AuthVerdict(verdict.reason_code, verdict.why)
        acl = access.client_acl(question.client, verdict.superuser, question.facts)
        will_allowed = question.will_topic is None or acl is None or acl.allows(PUBLISH, question.will_topic)
        return AuthVerdict(0, verdict.why, acl, will_allowed, verdict.superuser)
