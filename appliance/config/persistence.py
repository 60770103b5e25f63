"""The `persistence { ... }` block (ours). NanoMQ's `sqlite { ... }` block means, in NanoMQ, a
SQLite file in `mounted_file_path` that keeps retained messages and the bridges' cache across
a restart. Here the one persistence store keeps those and more (sessions, queued and in-flight
messages, delayed wills), so a `sqlite` block without a `persistence` block turns persistence
on in that directory; its other keys are read in config/sqlite.py."""

from __future__ import annotations

from .keys import key_of
from .model import PersistenceConfig
from .sqlite import SQLITE_ENABLE, SqliteConfig
from .reader import Section, format_path, read_block


def read_persistence(root: Section) -> PersistenceConfig | None:
    """The persistence block; without one, NanoMQ's sqlite block (see config/sqlite.py for its
    keys) turns persistence on in its mounted_file_path, as NanoMQ keeps retained messages
    there."""
    block = root.child("persistence")
    sqlite = root.child("sqlite")
    if block is not None:
        if not block.get("enable", True, key_of(PersistenceConfig, "enable").parse):
            block.seen.update(block.keys())  # a disabled block is not validated
            return None
        if not block.has("dir"):
            raise block.fail(None, 'dir is required, e.g. dir = "/var/lib/nanomq"')
        config = read_block(block, PersistenceConfig)
        block.finish()
        if sqlite is not None and sqlite.has("mounted_file_path"):
            root.ctx.warn(sqlite.at("mounted_file_path"), f"{format_path(sqlite.at('mounted_file_path'))} is not "
                          "used: the persistence block's dir holds the store (ignored)")
        return config
    if sqlite is None or not sqlite.get("enable", True, SQLITE_ENABLE.parse):
        return None
    directory = sqlite.get("mounted_file_path", key_of(SqliteConfig, "mounted_file_path").default,
                           key_of(SqliteConfig, "mounted_file_path").parse)
    return PersistenceConfig(dir=directory, dir_key="sqlite.mounted_file_path")
