"""`python -m appliance [start|check-config] [--conf PATH]`.

gevent patches the standard library first, before anything imports socket, ssl or
threading (urllib3 among them), so every module below is cooperative without knowing it.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from . import __version__  # noqa: E402
from .config import ConfigError, default_config_path, load_config  # noqa: E402
from .logs import configure_logging  # noqa: E402

log = logging.getLogger("appliance")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance", description="MQTT broker appliance")
    parser.add_argument("command", nargs="?", choices=("start", "check-config"), default="start",
                        help="start the broker (default) or only validate the configuration")
    parser.add_argument("--conf", metavar="PATH", default=None,
                        help="configuration file (default: $NANOMQ_CONF_PATH or etc/nanomq.conf)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)

    path = args.conf or default_config_path()
    try:
        loaded = load_config(path)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{path}: OK")
        return 0

    configure_logging(loaded.config.log)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return run(loaded.config)


def run(config) -> int:
    from .app import Appliance
    from .store import StoreError

    try:
        appliance = Appliance(config)
    except StoreError as error:  # a corrupt or foreign store file, a spool_dir that is a file
        print(f"error: {error}", file=sys.stderr)  # one line, as for a config error
        return 2
    try:
        appliance.start()
    except OSError as error:  # e.g. the port is taken: say so, no traceback
        log.error("cannot start: %s", error)
        print(f"error: cannot start: {error}", file=sys.stderr)
        return 1
    log.info("appliance %s started with %s", __version__, config.source or "defaults")
    stop_requested = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop_requested.set)
    stop_requested.wait()
    appliance.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
