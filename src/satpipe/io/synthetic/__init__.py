"""Procedural satellite data written in the real datasets' formats, so real readers are exercised."""
