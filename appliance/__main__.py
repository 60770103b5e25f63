"""`python -m appliance [start|check-config] [--conf PATH]`.

gevent patches the standard library first, before anything imports socket, ssl or
threading (urllib3 among them), so every module below is cooperative without knowing it.

Exit codes: 0 stopped cleanly, or check-config found the configuration valid; 2 the
configuration is wrong, or names a file or directory that cannot be used (one line on
stderr naming file, line and key); 1 a valid configuration the appliance could not start
with, such as a listen address that is taken or not on this machine (one line).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from . import __version__  # noqa: E402
from .config import ConfigError, StartupError, default_config_path, load_config  # noqa: E402
from .logs import SecretFilter, configure_logging, configured_secrets  # noqa: E402

log = logging.getLogger("appliance")

EXIT_CONFIG, EXIT_START = 2, 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance", description="MQTT broker appliance")
    parser.add_argument("command", nargs="?", choices=("start", "check-config"), default="start",
                        help="start the broker (default) or only validate the configuration")
    parser.add_argument("--conf", metavar="PATH", default=None,
                        help="configuration file (default: $NANOMQ_CONF_PATH or etc/nanomq.conf)")
    parser.add_argument("--old_conf", metavar="PATH", default=None,
                        help="a file in NanoMQ's pre-0.14 key=value format (also recognised by --conf)")
    parser.add_argument("--show", action="store_true",
                        help="with check-config: print every key's value and where it came from")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)

    if args.old_conf is not None and args.conf is not None:
        parser.error("give --conf or --old_conf, not both")
    path = args.old_conf or args.conf or default_config_path()
    try:
        loaded = load_config(path, old_format=True if args.old_conf else None)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.show:
            from .config.reference import effective

            print("\n".join(effective(loaded, os.environ)))
        print(f"{path}: OK")
        return 0

    log_config = loaded.config.log
    if "file" in log_config.to and log_config.dir.endswith("/"):
        os.makedirs(log_config.dir, exist_ok=True)  # NanoMQ's rule; check-config found it creatable
    configure_logging(log_config, SecretFilter(*configured_secrets(loaded.config)))
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return run(loaded, lambda: load_config(path, old_format=True if args.old_conf else None))


def run(loaded, load=None) -> int:
    """Start the appliance from `loaded`; `load` re-reads the configuration at SIGHUP."""
    from .app import Appliance

    config = loaded.config
    try:
        appliance = Appliance(config, load)
        # Before start(), so a SIGHUP once the broker answers /readyz reloads, never kills it.
        gevent.signal_handler(signal.SIGHUP, appliance.reload)
        appliance.start()
    except StartupError as error:
        return _fail(config, EXIT_CONFIG, str(loaded.error(error.path, error.problem)))
    except OSError as error:  # e.g. the port is taken: say so, no traceback
        return _fail(config, EXIT_START, f"cannot start: {error}")
    except Exception as error:
        problem = _spool_problem(error, config)
        if problem is None:
            raise
        return _fail(config, EXIT_CONFIG, str(loaded.error("webhook.queue.spool_dir", problem)))
    log.info("appliance %s started with %s", __version__, config.source or "defaults")
    _settle_as_a_server()
    stop_requested = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop_requested.set)
    stop_requested.wait()
    appliance.stop()
    return 0


def _spool_problem(error: Exception, config) -> str | None:
    """Why the WebHook spool's store cannot be used (a corrupt or foreign file, a spool_dir
    that is a file), or None for any other error. Imported only then: a broker without a
    store never loads sqlite3 (start-up RSS)."""
    import sqlite3

    from .store import StoreError

    if isinstance(error, StoreError):
        return str(error)
    if isinstance(error, sqlite3.DatabaseError):  # the spool file is corrupt or not a spool
        return f"cannot open the spool in {config.webhook.queue.spool_dir}: {error}"
    return None


def _settle_as_a_server() -> None:
    """Once started: give the heap that start-up used and freed (the config parser's work,
    gevent's plugin scan) back to the OS, and tune CPython's cycle collector for a
    long-running server (bench/persistence/README.md). What exists now (modules, the config,
    what persistence loaded) lives as long as the process: frozen, full collections no longer
    walk it. And a collection after every 700 new containers (the default) runs several times
    a millisecond under load and promotes every message still in flight into the older
    generations, to be walked again there; after 10,000 most of them are gone first.
    Reference counting still frees acyclic garbage at once: only garbage cycles wait a little
    longer."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _fail(config, code: int, message: str) -> int:
    """Say why start-up failed once on stderr (the console log, or a plain line), and in the
    log file if there is one."""
    log.error("%s", message)
    if "console" not in config.log.to:
        print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
