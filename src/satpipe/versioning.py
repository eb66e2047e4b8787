"""Code versions for cache keys.

Flyte's automatic cache version hashes only a task function's own source, so an edit to library code
the task calls would not invalidate it. A stage's version is instead the digest of the source of every
module it runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
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
    # Modules are located, not imported: a stage's version must not cost the import of torch.
    files: dict[str, Path] = {path.name: path for path in extra_files}
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no module named {name!r}")
        origin = Path(spec.origin)
        top = Path(importlib.util.find_spec(name.split(".")[0]).origin or "").parent.parent  # type: ignore[union-attr]
        for path in sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]:
            files[path.relative_to(top).as_posix()] = path
    h = hashlib.sha256()
    for label in sorted(files):
        h.update(label.encode() + b"\0" + files[label].read_bytes() + b"\0")
    return h.hexdigest()[:16]


def git_commit(folder: Path) -> str:
    """The commit checked out at ``folder`` (12 hex digits, "+ local changes" when tracked files differ).

    Returns "unknown" where there is no git or no repository, as in a cluster image that holds the
    code without its history, so a report can always say something.
    """
    try:
        commit = _git(folder, "rev-parse", "--short=12", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + local changes" if changed else commit


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()
