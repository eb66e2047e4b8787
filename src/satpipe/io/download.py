"""HTTP downloads that stream, resume, verify and place files atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from satpipe.errors import ChecksumError, DownloadError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
SUPPORTED_DIGESTS = ("sha256", "md5")


@dataclass(frozen=True)
class RemoteFile:
    """A file published at a URL.

    Attributes:
        url: Where to fetch it.
        filename: Name to store it under.
        checksum: ``"sha256:<hex>"`` (preferred) or ``"md5:<hex>"`` where only an MD5 is published;
            None skips verification.
        size: Expected size in bytes, if known; checked before the checksum.
    """

    url: str
    filename: str
    checksum: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.checksum is not None:
            algorithm, _, digest = self.checksum.partition(":")
            if algorithm not in SUPPORTED_DIGESTS or not digest:
                raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {self.checksum!r}")


def _digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def verify(path: Path, remote: RemoteFile) -> None:
    """Check a file's size and checksum against what was published.

    Raises:
        ChecksumError: If either differs.
    """
    if remote.size is not None and (actual := path.stat().st_size) != remote.size:
        raise ChecksumError(f"{path}: size {actual} bytes, expected {remote.size} from {remote.url}")
    if remote.checksum is not None:
        algorithm, _, expected = remote.checksum.partition(":")
        actual_digest = _digest(path, algorithm)
        if actual_digest != expected.lower():
            raise ChecksumError(f"{path}: {algorithm} {actual_digest} does not match the expected {expected}")


def download(
    remote: RemoteFile, dest_dir: Path, *, offline_hint: str = "", timeout_s: float = 30.0, progress: bool = True
) -> Path:
    """Download a file into ``dest_dir``, resuming a partial download, and verify it.

    The bytes stream into ``<filename>.part``; an interrupted download keeps that file and the next
    call asks the server for the rest with an HTTP Range request. Only a verified file is renamed to
    its final name. A file that fails verification is deleted, so the next call starts afresh.

    Args:
        remote: What to fetch.
        dest_dir: Folder to place the file in.
        offline_hint: Appended to the error when the server cannot be reached (what to do instead).
        timeout_s: Socket timeout per read.
        progress: Show a progress bar.

    Returns:
        Path of the verified file.

    Raises:
        DownloadError: If the server cannot be reached, answers with an error, or the transfer breaks.
        ChecksumError: If the finished file does not match the published size or checksum.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / remote.filename
    if final.exists():
        try:
            verify(final, remote)
            logger.info("%s already downloaded and verified", final)
            return final
        except ChecksumError:
            logger.warning("%s exists but does not verify; downloading it again", final)
            final.unlink()

    part = final.with_name(final.name + ".part")
    _fetch(remote, part, offline_hint=offline_hint, timeout_s=timeout_s, progress=progress)
    try:
        verify(part, remote)
    except ChecksumError as e:
        part.unlink()
        raise ChecksumError(f"{e}; the download was deleted, run again to fetch it afresh") from None
    os.replace(part, final)
    return final


def _fetch(remote: RemoteFile, part: Path, *, offline_hint: str, timeout_s: float, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if remote.size is not None and offset >= remote.size:
        return  # an earlier transfer finished but was not yet verified
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the part file is already whole
            return
        raise DownloadError(f"{remote.url}: server answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        hint = f"; {offline_hint}" if offline_hint else ""
        raise DownloadError(f"cannot reach {remote.url} ({reason}){hint}") from None

    with response:
        if offset and response.status != 206:
            logger.info("%s does not support resuming; starting %s again", remote.url, remote.filename)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else remote.size
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with (
            open(part, "ab" if offset else "wb") as out,
            Progress(*columns, TimeRemainingColumn(), disable=not progress) as bar,
        ):
            task = bar.add_task(remote.filename, total=total, completed=offset)
            received = offset
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(task, completed=received)
            except (OSError, urllib.error.URLError) as e:
                raise DownloadError(
                    f"download of {remote.url} broke off after {received} bytes ({e}); run again to resume"
                ) from None
    if total is not None and received < total:
        raise DownloadError(f"download of {remote.url} ended after {received} of {total} bytes; run again to resume")
