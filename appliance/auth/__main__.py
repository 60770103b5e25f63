"""`python -m appliance.auth hash [USERNAME]`: print a password-file line with a hashed password.

The password is read from the terminal without echo, or from stdin when piped (first line),
never from the command line, where `ps` and shell history would keep it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from .passwords import DEFAULT_ITERATIONS, hash_password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.auth",
                                     description="Make a hashed entry for the password file (auth.password).")
    commands = parser.add_subparsers(dest="command", required=True)
    hashing = commands.add_parser("hash", help="hash a password read from the terminal or stdin")
    hashing.add_argument("username", nargs="?", help='print a whole "username": "hash" line')
    hashing.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                         help=f"PBKDF2-SHA256 iterations (default {DEFAULT_ITERATIONS})")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be 1 or more")
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: empty password", file=sys.stderr)
        return 1
    hashed = hash_password(password, args.iterations)
    print(f"{json.dumps(args.username)}: \"{hashed}\"" if args.username else hashed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
