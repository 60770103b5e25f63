#!/bin/sh
# One command for the whole benchmark: installs mosquitto if missing, then runs every scenario
# against the appliance and mosquitto (pinned: broker core 0, load generator core 1).
#   bench/run.sh                          # everything, a few minutes
#   bench/run.sh --only fanin_q1 --repeat 3
#   bench/run.sh --help
set -e
cd "$(dirname "$0")/.."
# Debian packages: mosquitto (the peer), nginx-light (the webhook scenario's sink; it pulls in
# the echo module, libnginx-mod-http-echo), mosquitto-clients (bench.verify's witnesses).
missing=""
[ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
[ -x /usr/bin/mosquitto_sub ] || missing="$missing mosquitto-clients"
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] || missing="$missing nginx-light"
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing ..." >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m bench "$@"
