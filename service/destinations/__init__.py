"""One module per CRM behind the `Destination` protocol (see base.py).

`build_all` creates the real destinations; tests and the benchmark pass their
own (for example `MemoryDestination`) to the pipeline instead. `build_readers`
creates them for the read-only commands (preview --lookup, check-config), which
use only the protocol's `lookup` and `describe`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from service.destinations.base import Destination, DestinationContext
from service.metrics import Metrics
from service.settings import Settings

# destination id -> module that defines `create(ctx) -> Destination`
MODULES: dict[str, str] = {
    "salesforce": "service.destinations.salesforce",
    "hubspot": "service.destinations.hubspot",
    "airtable": "service.destinations.airtable",
}


def build_all(ctx: DestinationContext) -> dict[str, Destination]:
    built: dict[str, Destination] = {}
    for name, module in MODULES.items():
        built[name] = importlib.import_module(module).create(ctx)
    return built


def build_readers(ca_file: Path | None, timeout_s: float = 30.0) -> dict[str, Destination]:
    """Every destination, for a command: no broker setting is read (nor needed), and
    its metrics go to a registry of its own."""
    settings = Settings(
        bootstrap_servers="", destination_ca_file=ca_file, destination_timeout_s=timeout_s
    )
    return build_all(DestinationContext(settings, Metrics()))
