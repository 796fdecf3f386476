"""FlowForge's shared package: settings, storage, manifests, the gRPC runtime and the CLI."""

__version__ = "0.1.0"
