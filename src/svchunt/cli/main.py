"""`svchunt` entry point. Sub-commands are imported lazily so that start-up stays fast."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command; each stage owns its module.
COMMANDS: dict[str, str] = {
    "hunt": "svchunt.cli.hunt:hunt",
    "rules": "svchunt.cli.rules:rules",
    "audit": "svchunt.cli.audit:audit",
    "report": "svchunt.cli.report:report",
    "query": "svchunt.cli.query:query",
    "watch": "svchunt.cli.watch:watch",
    "coverage": "svchunt.cli.coverage:coverage",
    "convert": "svchunt.cli.convert:convert",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="svchunt")
def cli() -> None:
    """Hunt Windows service persistence and service-based lateral movement."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
