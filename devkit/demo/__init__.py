"""`make run`: broker, sandboxes, the service and a producer of demo scenes (run.py)."""
