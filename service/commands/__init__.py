"""The tools `python -m service <command>` runs: preview, replay-dlq, check-config, trace."""
