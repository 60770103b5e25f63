"""The durable store: one SQLite file (stdlib sqlite3, WAL), one commit pipeline shared by every
owner that must not lose what the broker acknowledged (the WebHook spool today, sessions and
retained messages later). Owners register their tables, queue changes, and ask to be told
when everything they queued is on disk."""

from .store import SYNC_MODES, ChangeSource, GivenBack, Store, StoreError

__all__ = ["SYNC_MODES", "ChangeSource", "GivenBack", "Store", "StoreError"]
