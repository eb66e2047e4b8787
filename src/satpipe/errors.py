"""Errors that satpipe raises for bad input, each a subclass of a builtin.

Every message is one line that names the file or setting and what is wrong with it, so that the
command line can print it as it is and exit non-zero.
"""

from __future__ import annotations


class SatpipeError(Exception):
    """Base of all errors caused by the user's input rather than by a bug."""


class ConfigError(SatpipeError, ValueError):
    """A configuration value is invalid."""


class DataError(SatpipeError, ValueError):
    """An input file or folder is unreadable, corrupt or of the wrong shape."""


class DatasetNotFoundError(SatpipeError, FileNotFoundError):
    """A dataset folder is missing or holds no recognisable data."""


class DownloadError(SatpipeError, ConnectionError):
    """A download could not be completed."""


class ChecksumError(SatpipeError, ValueError):
    """A downloaded file does not match its published checksum."""


class UnsafeArchiveError(SatpipeError, ValueError):
    """An archive holds an entry that would land outside the extraction folder."""


class PretrainedWeightsError(SatpipeError, RuntimeError):
    """Pretrained weights could not be obtained."""


class ManifestError(SatpipeError, ValueError):
    """A stage output is missing its manifest or the manifest is not the expected one."""


class GpuUnavailableError(SatpipeError, RuntimeError):
    """A task asked for GPUs that this machine cannot use (no driver, or one too old for torch's CUDA)."""


class NonFiniteLossError(SatpipeError, FloatingPointError):
    """Training produced a loss that is NaN or infinite."""
