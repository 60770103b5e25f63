"""The chart's config watcher (configReload.mode = watch), run from the appliance image.

The kubelet replaces the files of a mounted ConfigMap or Secret in place (about a minute after the
object changed). This sidecar looks at the broker's config, secret and TLS directories every
WATCH_INTERVAL seconds and, when their content changed, asks the broker in the same pod to
re-read them: POST /api/v4/reload on 127.0.0.1, with the http_server credentials of the config it
just read (the same file and NANOMQ_* variables as the broker). Clients stay connected. A request
that fails is tried again at the next look; one line is printed per outcome.
"""

import base64
import hashlib
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from appliance.config import ConfigError, default_config_path, load_config

WATCHED = ("/etc/nanomq", "/etc/nanomq-secret", "/etc/nanomq-tls")


def fingerprint() -> str:
    """A digest of every file in the watched directories (the kubelet's ..data links followed)."""
    digest = hashlib.sha256()
    for directory in WATCHED:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name.startswith("..") or not os.path.isfile(path):
                continue
            digest.update(path.encode() + b"\0")
            with open(path, "rb") as file:
                digest.update(hashlib.sha256(file.read()).digest())
    return digest.hexdigest()


def reload_request(http) -> urllib.request.Request:
    request = urllib.request.Request(f"http://127.0.0.1:{http.port}/api/v4/reload", data=b"", method="POST")
    if http.auth_type == "basic":
        token = base64.b64encode(f"{http.username}:{http.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def ask_reload(path: str, http) -> tuple[bool, object]:
    """(done, http): done is False when the request should be repeated at the next look."""
    try:
        http = load_config(path).config.http_server or http
    except ConfigError as error:
        # The broker keeps its running config for a file it cannot read; ask anyway, so it says why.
        print(f"config-watcher: {error}", flush=True)
    if http is None:
        print("config-watcher: the HTTP server is off (http_server.enable = false): cannot ask for a reload",
              flush=True)
        return True, http
    try:
        with urllib.request.urlopen(reload_request(http), timeout=30) as response:
            print(f"config-watcher: files changed, broker reloaded them ({response.status})", flush=True)
        return True, http
    except urllib.error.HTTPError as error:
        if error.code == 404:
            print("config-watcher: this broker has no /api/v4/reload; restart the pod to apply the change",
                  flush=True)
        else:
            print(f"config-watcher: reload refused: {error.code} {error.read(300).decode(errors='replace')}",
                  flush=True)
        return True, http
    except OSError as error:
        print(f"config-watcher: broker not reachable ({error}); trying again", flush=True)
        return False, http


def main() -> int:
    # As PID 1 of its container, Python would ignore SIGTERM and hold up the pod's deletion.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    interval = float(os.environ.get("WATCH_INTERVAL", "10"))
    path = default_config_path()
    try:
        http = load_config(path).config.http_server
    except ConfigError as error:
        print(f"config-watcher: {error}", flush=True)
        http = None
    seen, pending = fingerprint(), False
    print(f"config-watcher: watching {', '.join(d for d in WATCHED if os.path.isdir(d))} every {interval:g} s",
          flush=True)
    while True:
        time.sleep(interval)
        current = fingerprint()
        if current != seen:
            seen, pending = current, True
        if pending:
            done, http = ask_reload(path, http)
            pending = not done


if __name__ == "__main__":
    sys.exit(main())
