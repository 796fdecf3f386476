"""The executions API (`flowforge serve api`) and the web UI it serves."""
