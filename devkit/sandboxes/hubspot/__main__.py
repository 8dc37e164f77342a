"""Run the HubSpot sandbox on its own: `python -m devkit.sandboxes.hubspot`.

Prints one JSON line (the secret-file dict and the CA file to trust as
DESTINATION_CA_FILE), then serves until Ctrl-C or SIGTERM. Look at the records:
    curl --cacert CA_FILE https://127.0.0.1:PORT/_sandbox/records
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import tempfile
from pathlib import Path

from devkit.sandboxes.hubspot import HubSpotSandbox


async def main(args: argparse.Namespace) -> None:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="hubspot-sandbox-"))
    sandbox = HubSpotSandbox(
        directory,
        port=args.port,
        max_requests=args.max_requests,
        window_s=args.window_s,
        search_per_s=args.search_per_s,
        daily_limit=args.daily_limit,
        latency_s=args.latency_ms / 1000,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sandbox:
        line = {"credentials": sandbox.credentials(), "ca_file": str(sandbox.ca_file)}
        print(json.dumps(line), flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the CA file")
    parser.add_argument("--max-requests", type=int, default=190, help="per rolling window")
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--search-per-s", type=int, default=4)
    parser.add_argument("--daily-limit", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
