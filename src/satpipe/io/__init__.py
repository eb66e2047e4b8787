"""Reading, writing, downloading and generating satellite data."""
