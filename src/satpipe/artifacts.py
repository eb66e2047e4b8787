"""Stage outputs on disk: atomic placement, manifests and content digests.

Every stage writes into a temporary folder beside its final location and renames it into place only
when the stage succeeded, so a crash never leaves a half-written folder that a later cache hit would
trust. Each output folder holds a ``manifest.json`` saying what produced it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satpipe.errors import ManifestError

MANIFEST_NAME = "manifest.json"


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``final`` only if the block succeeds.

    If the block fails, nothing is left: neither the temporary folder nor ``final``'s parent if this
    call created it and nothing else was written there.

    Args:
        final: Where the finished folder should end up.

    Yields:
        The temporary folder to write into.
    """
    final = Path(final)
    made_parent = not final.parent.exists()
    tmp = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)  # also where a failing sibling removed the parent in between
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent:  # a failed stage leaves no empty run folder behind; a sibling's output keeps it
            with suppress(OSError):
                final.parent.rmdir()
        raise
    # Move an earlier copy aside first so that `final` is missing for as short a time as possible.
    stale = None
    if final.exists():
        stale = final.parent / f".{final.name}.stale-{uuid.uuid4().hex[:8]}"
        final.rename(stale)
    tmp.rename(final)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_manifest(out_dir: Path, stage: str, **fields: Any) -> dict[str, Any]:
    """Write ``manifest.json`` for a stage output and return it.

    Args:
        out_dir: The stage's output folder.
        stage: Name of the stage that produced the folder.
        **fields: Anything JSON-serialisable worth recording (config, inputs, results).

    Returns:
        The manifest as written.
    """
    manifest = {"stage": stage, "created": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
    atomic_write_text(Path(out_dir) / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(out_dir: Path, stage: str | None = None) -> dict[str, Any]:
    """Read a stage output's manifest, checking which stage wrote it.

    Args:
        out_dir: The stage's output folder.
        stage: The stage expected to have written it, or None to accept any.

    Returns:
        The manifest.

    Raises:
        ManifestError: If the manifest is missing, unreadable or from another stage.
    """
    path = Path(out_dir) / MANIFEST_NAME
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing; this folder is not a finished satpipe stage output") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if stage is not None and manifest.get("stage") != stage:
        raise ManifestError(f"{path}: written by stage {manifest.get('stage')!r}, expected {stage!r}")
    return manifest


def file_digest(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_key(folder: Path, identity: str | None = None) -> str:
    """The cache key of a folder: its content digest, then its manifest's if it has one (``<content>~<manifest>``).

    Stage outputs and data folders are keyed alike, so a stage's output handed back as a data folder hits
    the caches of the stages after it. The manifest names the run and action that wrote its folder, so
    its digest identifies that very output: a cache entry can be checked against the folder it points at
    by reading one small file (:func:`output_problem`) instead of hashing the whole folder again.

    Args:
        folder: The folder.
        identity: What identifies a folder too large to hash (a download's file list, say); it is the key
            as it is. Such a folder is downloaded into again in place, rewriting its manifest, and the
            stages after it need not run again for that, so the manifest stays out of the key.
    """
    if identity is not None:
        return identity
    manifest = Path(folder) / MANIFEST_NAME
    content = dir_digest(folder)
    return f"{content}~{manifest_digest(manifest.read_bytes())}" if manifest.is_file() else content


def manifest_digest(manifest: bytes) -> str:
    """A short digest of a manifest's bytes."""
    return hashlib.sha256(manifest).hexdigest()[:16]


def output_problem(path: str, key: str | None, manifest: bytes | None, root: Path | None = None) -> str | None:
    """Why a cached stage output cannot be used, or None when it can.

    Args:
        path: Where the cache entry says the output is.
        key: The output's cache key (:func:`content_key`).
        manifest: The bytes of the manifest found there, or None if there is none.
        root: For a local output, the artifact folder it must lie in.

    Returns:
        A phrase that completes "the cached output <path> ...".
    """
    if root is not None and not Path(path).resolve().is_relative_to(root):
        return f"lies outside this checkout's artifacts ({root})"
    if manifest is None:
        return f"is gone (no {MANIFEST_NAME})"
    _, marked, recorded = (key or "").rpartition("~")
    if marked and recorded != manifest_digest(manifest):
        return f"was written again since it was cached (its {MANIFEST_NAME} changed)"
    return None


def dir_digest(root: Path) -> str:
    """Return a sha256 over every file's relative path and content under ``root``.

    Hidden entries (names starting with '.') are skipped, so editor and OS litter does not change it.
    """
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        h.update(rel.as_posix().encode() + b"\0" + file_digest(path).encode() + b"\n")
    return h.hexdigest()
