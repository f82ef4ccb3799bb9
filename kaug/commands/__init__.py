"""kaug's own subcommands, one module each (entry points in the group `kaug.commands`)."""
