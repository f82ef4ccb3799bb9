"""kaug's applications: the `kaug` command, the demo, preview and experiment runners.

The libraries (`keras_aug`, `gan`, `finetune`) never import this package; it imports them, and
only inside the functions that run a command, so `kaug --help` starts without TensorFlow.
Subcommands and demo rows are plugins: entry points in the groups `kaug.commands` and
`kaug.demo_rows` (see setup.cfg), so another distribution can add its own.
"""
