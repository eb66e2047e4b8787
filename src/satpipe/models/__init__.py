"""Model architectures and factories."""
