"""RocksDB (rocksdict) against LMDB for the watermark store, on this machine.

Each engine runs in a child process of its own (so its peak RSS is its own):
N writes of a watermark-sized entry in batches of 1,000 (as a restore applies a
fetch), then N random point reads (as the stale check does), then reopening
the store. Prints seconds and peak RSS per engine, and the ratios.
    python -m bench.micro.state_store [--entries 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUE = b"\x00\x06\x4c\x5a\x8b\x2c\x1e\x00eval_0123456789"


def key(n: int) -> bytes:
    return f"org_{n % 1000:04d}:salesforce:lead_{n:09d}".encode()


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_rocksdict(path: str, n: int) -> dict[str, float]:
    from rocksdict import WriteBatch

    from service.pipeline.state import PartitionStore

    store = PartitionStore(Path(path))
    started = time.perf_counter()
    for start in range(0, n, 1000):
        batch = WriteBatch(raw_mode=True)
        for i in range(start, min(n, start + 1000)):
            batch.put(key(i), VALUE)
        store.db.write(batch)
    written = time.perf_counter()
    for i in random.sample(range(n), n):
        store.db.get(key(i))
    read = time.perf_counter()
    store.close()
    PartitionStore(Path(path)).close()
    return {
        "write_s": written - started,
        "read_s": read - written,
        "reopen_s": time.perf_counter() - read,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_lmdb(path: str, n: int) -> dict[str, float]:
    import lmdb

    env = lmdb.open(path, map_size=8 << 30, sync=False, metasync=False)  # like RocksDB: no fsync
    started = time.perf_counter()
    for start in range(0, n, 1000):
        with env.begin(write=True) as txn:
            for i in range(start, min(n, start + 1000)):
                txn.put(key(i), VALUE)
    written = time.perf_counter()
    with env.begin() as txn:
        for i in random.sample(range(n), n):
            txn.get(key(i))
    read = time.perf_counter()
    env.close()
    lmdb.open(path, map_size=8 << 30).close()
    return {
        "write_s": written - started,
        "read_s": read - written,
        "reopen_s": time.perf_counter() - read,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(engine: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.micro.state_store", "--child", engine, "--entries", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--child", choices=("rocksdict", "lmdb"))
    args = parser.parse_args()
    if args.child:
        run = run_rocksdict if args.child == "rocksdict" else run_lmdb
        print(json.dumps(run(tempfile.mkdtemp(prefix=f"{args.child}-"), args.entries)))
        return
    results = {engine: child(engine, args.entries) for engine in ("rocksdict", "lmdb")}
    print(f"{args.entries:,} entries")
    for engine, r in results.items():
        print(
            f"  {engine:9}  write {r['write_s']:6.2f}s  read {r['read_s']:6.2f}s  "
            f"reopen {r['reopen_s']:5.2f}s  peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    rocks, lm = results["rocksdict"], results["lmdb"]
    print(
        "  ratio rocksdict/lmdb: "
        + "  ".join(f"{k} {rocks[k] / lm[k]:.2f}" for k in ("write_s", "read_s", "peak_rss_mb"))
    )


if __name__ == "__main__":
    main()
