"""Code versions for cache keys.

Flyte's automatic cache version hashes only a task function's own source, so an edit to library code
the task calls would not invalidate it. A stage's version is instead the digest of the source of every
module it runs.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path


def code_digest(*modules: str, extra_files: tuple[Path, ...] = ()) -> str:
    """Return a short digest of the Python source of modules or packages and extra files.

    Args:
        *modules: Dotted names; a package contributes every ``.py`` file below it.
        extra_files: More files to include (for example a task module outside the package).

    Returns:
        The first 16 hex digits of a sha256 over the files' relative names and contents.
    """
    # Files are named relative to their package root, never by absolute path, so a version computed
    # on a laptop equals the one computed in the cluster's container.
    files: dict[str, Path] = {path.name: path for path in extra_files}
    for name in modules:
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "")
        top = Path(importlib.import_module(name.split(".")[0]).__file__ or "").parent.parent
        for path in sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]:
            files[path.relative_to(top).as_posix()] = path
    h = hashlib.sha256()
    for label in sorted(files):
        h.update(label.encode() + b"\0" + files[label].read_bytes() + b"\0")
    return h.hexdigest()[:16]
