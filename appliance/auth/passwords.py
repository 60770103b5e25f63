"""Password entries of NanoMQ's password file (`auth.password`), plaintext or hashed.

An entry is `"user": "secret"` (NanoMQ's plaintext form) or `"user": "pbkdf2-sha256$<iterations>$<salt>$<hash>"`
(salt and hash in unpadded base64), made by `python -m appliance.auth hash`. Every
comparison takes constant time, and an unknown user costs as much as a known one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import gevent

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 200_000  # ~0.1 s on an arm64 edge box; hashing runs off the event loop
_SALT_BYTES = 16


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """The hashed form of `password` for the password file."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def parse_hashed(entry: str) -> tuple[int, bytes, bytes] | None:
    """(iterations, salt, digest) of a hashed entry; None if `entry` is plaintext.
    ValueError if it starts like a hash but is not one (so a typo is never a plaintext password)."""
    if not entry.startswith(SCHEME + "$"):
        return None
    parts = entry.split("$")
    if len(parts) != 4 or not parts[1].isdigit() or int(parts[1]) < 1:
        raise ValueError(f'expected "{SCHEME}$<iterations>$<salt>$<hash>"')
    try:
        salt, digest = _unb64(parts[2]), _unb64(parts[3])
    except ValueError:
        raise ValueError("salt and hash must be base64") from None
    if not salt or len(digest) != 32:
        raise ValueError("the hash must be 32 bytes of base64 (a PBKDF2-SHA256 digest)")
    return int(parts[1]), salt, digest


class PasswordTable:
    """Checks a username and password against the entries of the password file."""

    def __init__(self, entries: tuple[tuple[str, str], ...]) -> None:
        self._entries: dict[str, tuple] = {}
        for username, secret in entries:
            hashed = parse_hashed(secret)
            self._entries[username] = hashed if hashed is not None else (secret.encode(),)
        # Unknown users are checked against a decoy as costly as the dearest entry, so
        # timing does not tell who exists.
        hashed = [entry for entry in self._entries.values() if len(entry) == 3]
        self._decoy = ((max(entry[0] for entry in hashed), os.urandom(_SALT_BYTES), os.urandom(32))
                       if hashed else (os.urandom(16),))

    def __contains__(self, username: str) -> bool:
        return username in self._entries

    def check(self, username: str, password: bytes | None) -> bool | None:
        """True if the password is right, False if wrong, None if the user has no entry."""
        entry = self._entries.get(username)
        known = entry is not None
        given = password or b""
        if entry is None:
            entry = self._decoy
        if len(entry) == 1:  # plaintext, as NanoMQ stores it
            right = hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(entry[0]).digest())
        else:
            iterations, salt, digest = entry
            # PBKDF2 releases the GIL: a thread keeps every other connection served meanwhile.
            computed = gevent.get_hub().threadpool.apply(hashlib.pbkdf2_hmac, ("sha256", given, salt, iterations))
            right = hmac.compare_digest(computed, digest)
        if not known:
            return None
        return right and password is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
