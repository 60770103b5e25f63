"""The `persistence { ... }` block (ours), and NanoMQ's `sqlite { ... }` block read for what it
means in NanoMQ: a SQLite file in `mounted_file_path` that keeps retained messages across a
restart. Here the one persistence store keeps those and more (sessions, queued and in-flight
messages, delayed wills), so a `sqlite` block without a `persistence` block turns persistence
on in that directory; its tuning keys have no equivalent and each says so (warning)."""

from __future__ import annotations

from .keys import key_of
from .model import PersistenceConfig
from .reader import Section, format_path, read_block

# NanoMQ's default for mounted_file_path: "the path NanoMQ runs in".
NANOMQ_SQLITE_DEFAULT_DIR = "."
# sqlite keys without an equivalent, and why (NanoMQ: docs config-description/broker.md, "Cache").
SQLITE_UNUSED = {
    "disk_cache_size": "every acknowledged message is kept; queues are bounded by mqtt.max_mqueue_len "
                       "and limits.max_queued_bytes",
    "flush_mem_threshold": "every change is written in group commits before it is acknowledged, not after "
                           "a threshold of messages",
    "resend_interval": "in-flight messages are resent when their client reconnects (and every "
                       "mqtt.retry_interval to MQTT 3.1.1 clients)",
}


def read_persistence(root: Section) -> PersistenceConfig | None:
    block = root.child("persistence")
    sqlite = root.child("sqlite")
    config = None
    if block is not None:
        if block.get("enable", True, key_of(PersistenceConfig, "enable").parse):
            if not block.has("dir"):
                raise block.fail(None, 'dir is required, e.g. dir = "/var/lib/nanomq"')
            config = read_block(block, PersistenceConfig)
            block.finish()
        else:
            block.seen.update(block.keys())  # a disabled block is not validated
    if sqlite is not None:
        _read_sqlite(root, sqlite, block, config)
        if config is None and block is None:
            directory = sqlite.get("mounted_file_path", NANOMQ_SQLITE_DEFAULT_DIR, _directory)
            config = PersistenceConfig(dir=directory, dir_key="sqlite.mounted_file_path")
    return config


def _read_sqlite(root: Section, sqlite: Section, block: Section | None, config) -> None:
    if block is not None:
        # The persistence block says where and how; the sqlite block is not used at all.
        sqlite.seen.update(sqlite.keys())
        root.ctx.warn(root.at("sqlite"), "sqlite is not used: the persistence block configures the store "
                                         "(ignored)")
        return
    sqlite.get("mounted_file_path", NANOMQ_SQLITE_DEFAULT_DIR, _directory)
    for name, why in SQLITE_UNUSED.items():
        if sqlite.has(name):
            sqlite.seen.add(name)
            root.ctx.warn(sqlite.at(name), f"{format_path(sqlite.at(name))} has no equivalent (ignored: {why})")
    sqlite.finish()


def _directory(value) -> str:
    text = str(value).strip() if isinstance(value, (str, int, float)) else ""
    if not text:
        raise ValueError("expected a directory path")
    return text
