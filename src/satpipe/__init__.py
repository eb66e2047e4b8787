"""satpipe."""
