"""The orchestrator: workflows, the executions store and the Prefect flow over the services."""
