#!/usr/bin/env bash
# Install the run-time dependencies into .venv and start the broker, by default with the
# shipped etc/nanomq.conf. Arguments replace the default: e.g. `scripts/run.sh --conf my.conf`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
if [ $# -eq 0 ]; then
    set -- --conf etc/nanomq.conf
fi
exec .venv/bin/python -m appliance "$@"
