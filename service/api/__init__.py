"""The HTTP status API on HTTP_PORT: /metrics, /healthz, /readyz and /v1/destinations."""
