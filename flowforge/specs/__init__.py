"""The specs a workflow gives each layer, validated once for the orchestrator and the services."""
