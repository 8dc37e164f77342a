"""The micro-benchmarks of `make bench-micro`, each `python -m bench.micro.<name>`:
the service against a raw aiokafka loop in one process, each CRM SDK against the
service's aiohttp client, and the watermark store's engines."""
