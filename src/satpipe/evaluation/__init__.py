"""Metrics, benchmark protocols and inference engines."""
