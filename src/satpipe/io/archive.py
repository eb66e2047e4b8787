"""Safe extraction of zip and tar archives."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from satpipe.artifacts import atomic_dir
from satpipe.errors import DataError, UnsafeArchiveError


def _check_member(archive: Path, name: str, *, is_link: bool = False) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"{archive}: entry {name!r} would land outside the extraction folder; refusing it")
    if is_link:
        raise UnsafeArchiveError(f"{archive}: entry {name!r} is a link; refusing archives with links")


def extract_archive(archive: Path, target: Path) -> Path:
    """Extract a zip or tar archive into ``target``, refusing entries that could escape it.

    Every entry is checked before anything is written; extraction happens in a temporary folder that
    replaces ``target`` only when complete.

    Args:
        archive: A ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` file.
        target: Folder to create with the archive's contents.

    Returns:
        ``target``.

    Raises:
        UnsafeArchiveError: If an entry has an absolute path, a ``..`` component or is a link.
        DataError: If the file is not a readable archive.
    """
    archive, target = Path(archive), Path(target)
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    mode = info.external_attr >> 16
                    _check_member(archive, info.filename, is_link=stat.S_ISLNK(mode))
                with atomic_dir(target) as tmp:
                    zf.extractall(tmp)
        except zipfile.BadZipFile as e:  # also raised mid-extraction for an entry with a bad CRC
            raise DataError(f"{archive}: not a readable zip archive ({e})") from None
        return target
    try:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _check_member(archive, member.name, is_link=member.issym() or member.islnk())
            with atomic_dir(target) as tmp:
                tf.extractall(tmp, filter="data")
    except tarfile.TarError as e:
        raise DataError(f"{archive}: not a readable zip or tar archive ({e})") from None
    return target
