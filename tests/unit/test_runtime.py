"""GC tuning runs in a child interpreter: freezing would leak into the test process."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from service.runtime import GEN0_THRESHOLD, tune_gc
before = gc.get_freeze_count()
tune_gc()
print(before, gc.get_freeze_count() > 1000, gc.get_threshold()[0] == GEN0_THRESHOLD)
"""


def test_tune_gc_freezes_boot_objects_and_raises_gen0_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True", "True"]
