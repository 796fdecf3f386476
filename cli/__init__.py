"""The `flowforge` command line: the top layer, above the orchestrator and the services."""
