"""HTTP Basic authentication for `http_server`'s `/api/v4` endpoints, NanoMQ's result codes."""

from __future__ import annotations

import base64
import binascii
import hmac

# NanoMQ's /api/v4 result codes for a refused request.
WRONG_USERNAME_OR_PASSWORD = 103
EMPTY_USERNAME_OR_PASSWORD = 104


class BasicAuth:
    """Checks an `Authorization` header against the one configured user, in constant time."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()

    def refusal(self, authorization: str | None) -> int | None:
        """None when the header carries the configured credentials, else NanoMQ's code.

        A wrong user and a wrong password get the same answer in the same time, so the
        response never tells whether the user exists."""
        if not authorization:
            return EMPTY_USERNAME_OR_PASSWORD
        scheme, _, token = authorization.strip().partition(" ")
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        username, colon, password = decoded.partition(b":")
        # Both comparisons always run: no short cut that times out which one failed.
        user_ok = hmac.compare_digest(username, self._username)
        password_ok = hmac.compare_digest(password, self._password)
        if scheme.lower() == "basic" and colon and user_ok & password_ok:
            return None
        return WRONG_USERNAME_OR_PASSWORD
