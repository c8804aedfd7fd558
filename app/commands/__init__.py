"""The operator's `meetrec` subcommands over the database (`keys`, `recordings`): each module adds its
parsers to the command line (`register`) and prints an aligned table, or JSON with `--json`."""
