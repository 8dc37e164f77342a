"""`python -m service`: settings from the environment, then run until SIGTERM/SIGINT.

Exit codes: 0 after a clean shutdown, 2 for a bad setting (one line naming it).
`python -m service <command> ...` runs a tool from COMMANDS instead (its own exit code);
`--help` lists them and the main settings (service/commands/usage.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from service.app import Service
from service.commands import replay_cli, usage
from service.commands.checkconfig import cli as check_config
from service.destinations.base import Destination
from service.errors import SettingsError
from service.logs import configure
from service.runtime import tune_gc
from service.settings import Settings

log = logging.getLogger("service")


async def serve(settings: Settings, destinations: dict[str, Destination] | None = None) -> int:
    """Run until SIGTERM/SIGINT; the exit code (1 after BROKER_UNAVAILABLE_EXIT_S)."""
    service = Service(settings, destinations=destinations)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    run = asyncio.create_task(service.run())
    stopping = asyncio.create_task(service.stopping.wait())
    await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not run.done():
        # The deadline covers draining, the final commit and closing clients.
        try:
            await asyncio.wait_for(run, settings.shutdown_timeout_s)
        except TimeoutError:
            log.error(
                "shutdown took longer than SHUTDOWN_TIMEOUT_S; uncommitted work is redelivered"
            )
    stopping.cancel()
    if run.done():
        run.result()
    return service.exit_code


def _preview(argv: list[str]) -> int:
    from service.commands.preview import main as preview  # tools load only when asked for

    return preview(argv)


def _trace(argv: list[str]) -> int:
    from service.commands.trace_cli import main as trace

    return trace(argv)


# Subcommands: name -> main(argv) -> exit code. Without one, the service runs.
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "check-config": check_config.main,
    "preview": _preview,
    "replay-dlq": replay_cli.main,
    "trace": _trace,
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
    usage.parser().parse_args(sys.argv[1:])  # --help exits 0 here; an unknown argument exits 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"trailspark-destinations: {exc}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    tune_gc()
    log.info("starting (group %s, brokers %s)", settings.consumer_group, settings.bootstrap_servers)
    sys.exit(asyncio.run(serve(settings)))


if __name__ == "__main__":
    main()
