"""Splits, normalization statistics, packed datasets and datamodules."""
