"""Run the HubSpot sandbox on its own: `python -m tests.sandboxes.hubspot`.

Prints the secret-file JSON and the CA file to trust (DESTINATION_CA_FILE),
then serves until Ctrl-C. Look at the records: curl --cacert CA BASE/_sandbox/records
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

from tests.sandboxes.hubspot import HubSpotSandbox


async def main(port: int, directory: Path) -> None:
    async with HubSpotSandbox(directory, port=port) as sandbox:
        print(json.dumps({"credentials": sandbox.credentials(), "ca_file": str(sandbox.ca_file)}))
        print(f"records: {sandbox.base_url}/_sandbox/records", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the CA file")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="hubspot-sandbox-"))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, directory))
