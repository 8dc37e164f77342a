"""Dev tools, not the product: the HTTPS CRM sandboxes, the local broker, the
process and fleet harness the tests and benchmarks share, and the demo
(`make run`). The image does not ship this package, and `service/` never
imports it (tests/unit/test_layering.py checks both)."""
