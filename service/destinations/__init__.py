"""One module per CRM behind the `Destination` protocol (see base.py).

`build_all` creates the real destinations; tests and the benchmark pass their
own (for example `MemoryDestination`) to the pipeline instead.
"""

from __future__ import annotations

import importlib

from service.destinations.base import Destination, DestinationContext

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
