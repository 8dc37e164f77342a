"""Which offsets are safe to commit, per partition, and what is in flight.

Like Confluent's Parallel Consumer: records finish out of order (lanes run
concurrently), so we commit the lowest offset that is not finished yet. A crash
then redelivers at most the unfinished tail, and never skips a record.

The in-flight count and bytes (MAX_INFLIGHT, MAX_INFLIGHT_BYTES) are derived
from the open offsets of the partitions held now: work dropped or abandoned on
a revoke leaves with its partition, so no path can leak the budget. A Job keeps
the PartitionOffsets it was opened in, so a job finishing after its partition
was revoked (and perhaps assigned again) touches only the detached tracker.
"""

from __future__ import annotations

from collections import deque

from aiokafka import TopicPartition


class PartitionOffsets:
    def __init__(self) -> None:
        self._open: deque[int] = deque()  # offsets in arrival (= increasing) order
        self._sizes: dict[int, int] = {}  # unfinished offset -> its record's bytes
        self._next: int | None = None  # offset after the last one seen
        self._committed: int | None = None
        self.bytes = 0  # of the unfinished records

    def add(self, offset: int, size: int = 0) -> None:
        if offset in self._sizes:  # seen again (a re-fetch): already counted
            return
        self._open.append(offset)
        self._sizes[offset] = size
        self.bytes += size
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        """Idempotent: a second finish of the same offset changes nothing."""
        size = self._sizes.pop(offset, None)
        if size is None:
            return
        self.bytes -= size
        while self._open and self._open[0] not in self._sizes:
            self._open.popleft()

    @property
    def pending(self) -> int:
        return len(self._sizes)

    @property
    def position(self) -> int | None:
        """The lowest offset not finished yet (or the next one), committed or not."""
        return self._open[0] if self._open else self._next

    def commit_point(self) -> int | None:
        """Offset to commit now, or None when nothing new is safe to commit."""
        point = self.position
        if point is None or point == self._committed:
            return None
        return point

    def committed(self, offset: int) -> None:
        self._committed = offset


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, PartitionOffsets] = {}

    def add(self, tp: TopicPartition, offset: int, size: int = 0) -> PartitionOffsets:
        part = self.partitions.get(tp)
        if part is None:
            part = self.partitions[tp] = PartitionOffsets()
        part.add(offset, size)
        return part

    def pending(self, tps: set[TopicPartition] | None = None) -> int:
        return sum(p.pending for tp, p in self.partitions.items() if tps is None or tp in tps)

    @property
    def open_bytes(self) -> int:
        return sum(p.bytes for p in self.partitions.values())

    def commit_points(self, tps: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        points = {}
        for tp, part in self.partitions.items():
            if tps is None or tp in tps:
                point = part.commit_point()
                if point is not None:
                    points[tp] = point
        return points

    def mark_committed(self, points: dict[TopicPartition, int]) -> None:
        for tp, offset in points.items():
            if tp in self.partitions:
                self.partitions[tp].committed(offset)

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self.partitions.pop(tp, None)
