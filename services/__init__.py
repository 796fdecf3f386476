"""FlowForge's layer services: bronze, silver and gold, one gRPC server each."""
