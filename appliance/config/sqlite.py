"""NanoMQ's `sqlite { ... }` block, read for what it means in NanoMQ: a SQLite file in
`mounted_file_path` holding the disk cache of the MQTT bridges and the retained messages
(NanoMQ docs, config-description/broker.md, "Cache").

Here the block turns on persistence (config/persistence.py: `persistence.db` in that
directory, unless a persistence block says otherwise), and with it the bridges' disk queue:
every QoS 1/2 message waiting for an upstream is on disk before the local publisher gets its
PUBACK, and survives a restart or a crash. NanoMQ's tuning keys that have no equivalent say
so (a warning each), never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import Block, Bool, Duration, Int, Key, Text, key
from .reader import Section, format_path, read_block

SQLITE_ENABLE = Key("sqlite.enable", Bool(), True,
                    "false: no disk queue, the block unchecked (NanoMQ 0.14-0.18's switch; 0.19+: the block's "
                    "presence).")
# Keys NanoMQ has that change nothing here, and why.
NO_EQUIVALENT = {
    "flush_mem_threshold": "every QoS 1/2 message is written, in group commits, before it is acknowledged, "
                           "not after a threshold of messages",
    "resend_interval": "a bridge replays its disk queue as soon as it is connected again",
}


@dataclass(frozen=True)
class SqliteConfig(Block):
    """`sqlite { ... }`: the bridges' disk queue."""

    __section__ = "sqlite"
    disk_cache_size: int = key("sqlite.disk_cache_size", Int(0), 102_400,
                               "Bridges: QoS 1/2 messages kept on disk per bridge while they wait for the "
                               "upstream (with max_send_queue_len: the smaller bound); the oldest is dropped "
                               "and counted beyond it; 0: no disk queue.")
    mounted_file_path: str = key("sqlite.mounted_file_path", Text(form="path", empty=False), ".",
                                 "Directory of the store file (persistence.db); a writable volume (the image: "
                                 "/var/lib/nanomq).", shown_default="the working directory")
    flush_mem_threshold: int = key("sqlite.flush_mem_threshold", Int(1), 100,
                                   "Accepted, no effect (a warning): every QoS 1/2 message is on disk before "
                                   "its PUBACK.")
    resend_interval: float = key("sqlite.resend_interval", Duration(0.001, "milliseconds"), 5.0,
                                 "Accepted, no effect (a warning): the disk queue is replayed at reconnect.")

    @property
    def disk_queue(self) -> bool:
        return self.disk_cache_size > 0


def read_sqlite(root: Section) -> SqliteConfig | None:
    """The `sqlite` block; None when absent or `enable = false`."""
    sqlite = root.child("sqlite")
    if sqlite is None:
        return None
    if not sqlite.get("enable", True, SQLITE_ENABLE.parse):
        sqlite.seen.update(sqlite.keys())
        return None
    config = read_block(sqlite, SqliteConfig)
    for name, why in NO_EQUIVALENT.items():
        if sqlite.has(name):
            sqlite.ctx.warn(sqlite.at(name), f"{format_path(sqlite.at(name))} has no effect here ({why})")
    sqlite.finish()
    return config
