"""Which offsets are safe to commit, per partition.

Like Confluent's Parallel Consumer: records finish out of order (lanes run
concurrently), so we commit the lowest offset that is not finished yet. A crash
then redelivers at most the unfinished tail, and never skips a record.
"""

from __future__ import annotations

from collections import deque

from aiokafka import TopicPartition


class PartitionOffsets:
    def __init__(self) -> None:
        self._open: deque[int] = deque()  # offsets in arrival (= increasing) order
        self._finished: set[int] = set()
        self._next: int | None = None  # offset after the last one seen
        self._committed: int | None = None

    def add(self, offset: int) -> None:
        self._open.append(offset)
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._open and self._open[0] in self._finished:
            self._finished.discard(self._open.popleft())

    @property
    def pending(self) -> int:
        return len(self._open)

    @property
    def position(self) -> int | None:
        """The lowest offset not finished yet (or the next one), committed or not."""
        return self._open[0] if self._open else self._next

    def commit_point(self) -> int | None:
        """Offset to commit now, or None when nothing new is safe to commit."""
        point = self._open[0] if self._open else self._next
        if point is None or point == self._committed:
            return None
        return point

    def committed(self, offset: int) -> None:
        self._committed = offset


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, PartitionOffsets] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self.partitions.setdefault(tp, PartitionOffsets()).add(offset)

    def finish(self, tp: TopicPartition, offset: int) -> None:
        # A partition revoked meanwhile has no tracker: its new owner redelivers.
        part = self.partitions.get(tp)
        if part is not None:
            part.finish(offset)

    def pending(self, tps: set[TopicPartition] | None = None) -> int:
        return sum(p.pending for tp, p in self.partitions.items() if tps is None or tp in tps)

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
