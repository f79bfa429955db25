"""The subcommands of `hedgectl` (`python -m hedge_strategy.ctl`), one module per responsibility.

Each command module has `register(commands)`, which adds its subparsers to `hedgectl`'s and sets
`handler=<function(args) -> exit code>` on each. `hedge_strategy.ctl.COMMAND_HOMES` maps each command to its
module (only that one is imported when it runs); a new command (clear, report, ...) is a new module added
there. `common` holds the exit codes and shared helpers.
"""
