"""The image's HEALTHCHECK: GET /healthz on the HTTP server that the configuration describes.

It reads the same file and NANOMQ_* overrides as the broker (NANOMQ_CONF_PATH), so a port
changed in a mounted nanomq.conf is still the one checked. Exit 0 healthy, 1 not.
"""

import sys
import urllib.request

from appliance.config import ConfigError, default_config_path, load_config

# The broker listens on every address: ask it on loopback.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def main() -> int:
    try:
        http = load_config(default_config_path()).config.http_server
    except ConfigError as error:
        print(f"unhealthy: {error}")
        return 1
    if http is None:
        print("http_server is disabled (enable = false): nothing to check")
        return 0
    host = WILDCARDS.get(http.bind, http.bind)
    url = f"http://[{host}]:{http.port}/healthz" if ":" in host else f"http://{host}:{http.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            print(f"healthy: {url} answered {response.status}")
            return 0
    except OSError as error:
        print(f"unhealthy: {url}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
