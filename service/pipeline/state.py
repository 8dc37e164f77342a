"""The watermark state on disk: one RocksDB store per assigned lead partition.

Like a Kafka Streams / quix-streams state store: each store holds, per
(org, destination, lead), the newest delivered evaluation (`evaluated_at` in
epoch microseconds and its `evaluation_id`). The compacted watermarks topic is
its changelog: on assignment a store is restored from it, from the changelog
offset the store last recorded (so a store that survived a restart reads only
what is new), and it is closed on revoke. Memory stays bounded whatever the
number of leads: RocksDB keeps small memtables and a shared block cache, and a
small LRU sits in front for leads seen again soon.
"""

from __future__ import annotations

import logging
import re
import struct
import tempfile
from collections import OrderedDict
from pathlib import Path

from rocksdict import Cache, Options, Rdict, WriteBatch

log = logging.getLogger(__name__)
Mark = tuple[int, str, bool]  # (evaluated_at epoch µs, evaluation_id, written)
OFFSET_KEY = b"\x00changelog_offset"  # no lead key starts with NUL
CACHE_ENTRIES = 50_000
_BLOCK_CACHE = Cache(16 * 1024 * 1024)  # shared by every store of the process


ATTEMPTED = b"\x00"  # after the instant: a write went out, its answer said no or was lost


def encode(mark: Mark) -> bytes:
    flag = b"" if mark[2] else ATTEMPTED
    return struct.pack(">q", mark[0]) + flag + mark[1].encode()


def decode(value: bytes) -> Mark:
    written = value[8:9] != ATTEMPTED
    return struct.unpack(">q", value[:8])[0], value[8 if written else 9 :].decode(), written


def newer(value: bytes, local: bytes) -> bool:
    """Whether changelog `value` should replace the `local` store value: a later
    instant, or the same one unless that would turn written back into attempted."""
    if value[:8] != local[:8]:
        return value[:8] > local[:8]  # big-endian µs: bytes order is time order
    return not (local[8:9] != ATTEMPTED and value[8:9] == ATTEMPTED)


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(2 * 1024 * 1024)
    options.set_max_write_buffer_number(2)
    options.set_row_cache(_BLOCK_CACHE)
    return options


class PartitionStore:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.db = Rdict(str(path), _options())
        except Exception as exc:  # locked by another process on this STATE_DIR
            fresh = Path(tempfile.mkdtemp(prefix=f"{path.name}-", dir=path.parent))
            log.warning(
                "state store %s unavailable (%s); using a fresh one at %s", path, exc, fresh
            )
            self.db = Rdict(str(fresh), _options())
        raw = self.db.get(OFFSET_KEY)
        self.offset = int(raw) if raw is not None else 0  # next changelog offset to read
        # A store that survived a restart may hold marks newer than its changelog:
        # writes the CRM confirmed whose watermark records never reached Kafka
        # (kill -9). Replaying the changelog must not take them back.
        self.survived = raw is not None or next(iter(self.db.keys()), None) is not None

    def get(self, key: str) -> Mark | None:
        value = self.db.get(key.encode())
        return decode(value) if value is not None else None

    def put(self, key: str, mark: Mark) -> None:
        self.db[key.encode()] = encode(mark)

    def apply(self, records: list[tuple[bytes, bytes | None]], next_offset: int) -> None:
        """Changelog records in offset order, then the offset. Per key the last record
        wins, unless the surviving local mark is newer."""
        batch = WriteBatch(raw_mode=True)
        held: list[bytes | None] = [None] * len(records)
        if self.survived:
            held = self.db.get([key for key, _ in records]) or held
        for (key, value), local in zip(records, held, strict=True):
            if value is None:
                batch.delete(key)
            elif local is None or newer(value, local):
                batch.put(key, value)
        batch.put(OFFSET_KEY, str(next_offset).encode())
        self.db.write(batch)
        self.offset = next_offset

    def close(self) -> None:
        self.db.close()


class StateStores:
    """The stores of the assigned partitions, with an LRU of marks in front."""

    def __init__(self, root: Path, group: str, topic: str) -> None:
        self.root = root / _safe(group) / _safe(topic)
        self.parts: dict[int, PartitionStore] = {}
        self._cache: OrderedDict[str, Mark] = OrderedDict()

    def open(self, partition: int) -> PartitionStore:
        store = self.parts.get(partition)
        if store is None:
            store = self.parts[partition] = PartitionStore(self.root / str(partition))
        return store

    def close(self, partitions: set[int]) -> None:
        for partition in partitions:
            store = self.parts.pop(partition, None)
            if store is not None:
                store.close()
        self._cache.clear()  # keys of a closed partition must not answer for it

    def get(self, partition: int, key: str) -> Mark | None:
        mark = self._cache.get(key)
        if mark is None:
            store = self.parts.get(partition)
            mark = store.get(key) if store is not None else None
            if mark is not None:
                self._remember(key, mark)
        return mark

    def put(self, partition: int, key: str, mark: Mark) -> None:
        store = self.parts.get(partition)
        if store is not None:  # revoked meanwhile: its next owner restores it
            store.put(key, mark)
            self._remember(key, mark)

    def _remember(self, key: str, mark: Mark) -> None:
        self._cache[key] = mark
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
