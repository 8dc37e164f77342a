"""`python -m devkit.sandboxes.salesforce [--port 8443] [--dir DIR] [--seed]`: run the
sandbox until Ctrl-C, printing the secret-file JSON and the CA file to trust."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

from devkit.sandboxes.salesforce import SalesforceSandbox


def seed_demo(sandbox: SalesforceSandbox) -> None:
    """A few records, so a demo shows updates and propensity as well as creates."""
    sandbox.seed(
        "Lead",
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Company": "Analytical Engines Ltd",
            "Email": "ada@analytical.example",
        },
    )
    sandbox.seed(
        "Contact", {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@cobol.example"}
    )
    sandbox.seed("Account", {"Name": "Analytical Engines Ltd", "Website": "analytical.example"})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--dir", type=Path, default=None, help="where to write sandbox-ca.pem")
    parser.add_argument("--seed", action="store_true", help="pre-create demo records")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="sf-sandbox-"))
    async with SalesforceSandbox(folder, port=args.port) as sandbox:
        if args.seed:
            seed_demo(sandbox)
        info = {"credentials": sandbox.credentials(), "ca_file": str(sandbox.ca_file)}
        print(json.dumps(info), flush=True)
        print(
            f"records: curl --cacert {sandbox.ca_file} {sandbox.base_url}/_sandbox/records",
            flush=True,
        )
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
