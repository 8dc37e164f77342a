"""Builders of the CRM SDKs (simple-salesforce, hubspot-api-client) from a secret file.

Not part of the product: the service writes through its own aiohttp clients. These
serve the SDK compatibility tests, the client benchmarks and ad-hoc scripts.
"""
