"""kaug's own `kaug demo` rows, one module per capability (entry points in `kaug.demo_rows`)."""
