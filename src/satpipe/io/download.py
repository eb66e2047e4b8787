"""HTTP downloads that stream, resume, retry, run side by side, verify and place files atomically."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import random
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from satpipe.errors import ChecksumError, DownloadError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
SUPPORTED_DIGESTS = ("sha256", "md5")
#: HTTP answers that a later attempt may not get: the server was busy or briefly broken.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Attempts after the first for a transfer that failed transiently.
RETRIES = 5
#: Seconds before the first retry; each further one waits twice as long (at most MAX_BACKOFF_S), with jitter.
BACKOFF_S = 2.0
MAX_BACKOFF_S = 120.0


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
    remote: RemoteFile,
    dest_dir: Path,
    *,
    offline_hint: str = "",
    timeout_s: float = 30.0,
    progress: bool = True,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
) -> Path:
    """Download a file into ``dest_dir``, resuming a partial download, and verify it.

    The bytes stream into ``<filename>.part``. A transfer that breaks off, stalls for ``timeout_s`` or
    meets a transient server error is tried again (``retries`` times, waiting ``backoff_s`` and then twice
    as long each time) and asks the server for the rest with an HTTP Range request; when every attempt
    fails the part file stays, and the next call resumes it. Only a verified file is renamed to its final
    name. A file that fails verification is deleted, so the next call starts afresh.

    Args:
        remote: What to fetch.
        dest_dir: Folder to place the file in.
        offline_hint: Appended to the error when the server cannot be reached (what to do instead).
        timeout_s: Socket timeout per read.
        progress: Show a progress bar.
        retries: Attempts after the first for a transient failure.
        backoff_s: Seconds before the first retry.

    Returns:
        Path of the verified file.

    Raises:
        DownloadError: If the server cannot be reached, answers with a permanent error (such as HTTP 404), or
            every attempt failed.
        ChecksumError: If the finished file does not match the published size or checksum.
    """
    (path,) = download_all(
        [(remote, Path(dest_dir))],
        workers=1,
        offline_hint=offline_hint,
        timeout_s=timeout_s,
        progress=progress,
        retries=retries,
        backoff_s=backoff_s,
    )
    return path


def download_all(
    files: Sequence[tuple[RemoteFile, Path]],
    *,
    workers: int = 8,
    offline_hint: str = "",
    timeout_s: float = 30.0,
    progress: bool = True,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
) -> list[Path]:
    """Download each ``(remote, dest_dir)`` as :func:`download` does, ``workers`` transfers at a time.

    The first permanent failure stops every transfer at its next chunk (their part files stay, so a
    later call resumes them) and is raised; one progress bar counts the bytes of all files.

    Returns:
        The verified files, in the order of ``files``.

    Raises:
        DownloadError: As :func:`download`, for the first file that failed.
        ChecksumError: As :func:`download`.
    """
    stop = threading.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeRemainingColumn(), disable=not progress) as bar:
        label = files[0][0].filename if len(files) == 1 else f"{len(files)} files"
        meter = _Meter(bar, bar.add_task(label, total=None))

        def one(item: tuple[RemoteFile, Path]) -> Path:
            remote, dest_dir = item
            return _download(remote, Path(dest_dir), meter, stop, offline_hint, timeout_s, retries, backoff_s)

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="download") as pool:
            futures = [pool.submit(one, item) for item in files]
            try:
                for done in as_completed(futures):
                    done.result()
            except BaseException:
                stop.set()
                for future in futures:
                    future.cancel()
                raise
    return [future.result() for future in futures]


def require_space(files: Sequence[tuple[RemoteFile, Path]], hint: str) -> None:
    """Check that what is still to download of ``files`` (sizes known) fits on the disk of their folders.

    Raises:
        DownloadError: If it does not; ``hint`` (what to do about it) ends the message.
    """
    needed = 0
    for remote, dest_dir in files:
        final = Path(dest_dir) / remote.filename
        part = final.with_name(final.name + ".part")
        present = final.stat().st_size if final.exists() else part.stat().st_size if part.exists() else 0
        needed += max((remote.size or 0) - present, 0)
    folder = Path(files[0][1]) if files else Path(".")
    while not folder.exists():  # the disk the folders will be made on
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(
            f"{folder}: the files still to download need {decimal(needed)} but the disk has {decimal(free)} free; "
            + hint
        )


class _Transient(Exception):
    """A failure that a later attempt may not meet."""


class _Stopped(Exception):
    """Another transfer failed for good; this one stopped, keeping its part file."""


class _Meter:
    """One progress bar over concurrent transfers: bytes on disk against the sizes known so far."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar, self._task, self._lock = bar, task, threading.Lock()
        self._sizes: dict[Path, int] = {}
        self._done: dict[Path, int] = {}
        self._total = self._completed = 0

    def size(self, key: Path, nbytes: int) -> None:
        with self._lock:
            self._total += nbytes - self._sizes.get(key, 0)
            self._sizes[key] = nbytes
            self._bar.update(self._task, total=self._total)

    def on_disk(self, key: Path, nbytes: int) -> None:
        with self._lock:
            self._completed += nbytes - self._done.get(key, 0)
            self._done[key] = nbytes
            self._bar.update(self._task, completed=self._completed)


def _download(
    remote: RemoteFile,
    dest_dir: Path,
    meter: _Meter,
    stop: threading.Event,
    offline_hint: str,
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / remote.filename
    if final.exists():
        try:
            verify(final, remote)
            logger.info("%s already downloaded and verified", final)
            meter.size(final, final.stat().st_size)
            meter.on_disk(final, final.stat().st_size)
            return final
        except ChecksumError:
            logger.warning("%s exists but does not verify; downloading it again", final)
            final.unlink()

    part = final.with_name(final.name + ".part")
    if remote.size is not None:
        meter.size(part, remote.size)
    for attempt in range(retries + 1):
        try:
            _fetch(remote, part, meter, stop, offline_hint=offline_hint, timeout_s=timeout_s)
            break
        except _Transient as e:
            if attempt == retries:
                raise DownloadError(
                    f"download of {remote.url} failed {retries + 1} times ({e}); run again to resume"
                ) from None
            # Jitter, so that transfers that failed together do not all come back at the same moment.
            wait = min(backoff_s * 2**attempt, MAX_BACKOFF_S) * random.uniform(0.5, 1.0)
            logger.warning("%s: %s; trying again in %.1f s (attempt %d of %d)", remote.filename, e, wait,
                           attempt + 2, retries + 1)  # fmt: skip
            if stop.wait(wait):
                raise _Stopped from None
    try:
        verify(part, remote)
    except ChecksumError as e:
        part.unlink()
        raise ChecksumError(f"{e}; the download was deleted, run again to fetch it afresh") from None
    os.replace(part, final)
    return final


def _fetch(
    remote: RemoteFile, part: Path, meter: _Meter, stop: threading.Event, *, offline_hint: str, timeout_s: float
) -> None:
    """One attempt: the rest of ``part`` from the server. Raises _Transient for what a later attempt may not meet."""
    offset = part.stat().st_size if part.exists() else 0
    meter.on_disk(part, offset)
    if remote.size is not None and offset >= remote.size:
        return  # an earlier transfer finished but was not yet verified
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the part file is already whole
            return
        if e.code in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"{remote.url}: server answered HTTP {e.code} {e.reason}") from None
    except OSError as e:  # URLError included
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError | socket.gaierror):  # offline, or a wrong host: no retry helps
            hint = f"; {offline_hint}" if offline_hint else ""
            raise DownloadError(f"cannot reach {remote.url} ({reason}){hint}") from None
        raise _Transient(f"no answer: {reason}") from None

    with response:
        if offset and response.status != 206:
            logger.info("%s does not support resuming; starting %s again", remote.url, remote.filename)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else remote.size
        if remote.size is None and total is not None:
            meter.size(part, total)
        received = offset
        with open(part, "ab" if offset else "wb") as out:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    if stop.is_set():
                        raise _Stopped
                    out.write(chunk)
                    received += len(chunk)
                    meter.on_disk(part, received)
            except (OSError, http.client.HTTPException) as e:
                raise _Transient(f"the transfer broke off after {received} bytes: {e}") from None
    if total is not None and received < total:
        raise _Transient(f"the transfer ended after {received} of {total} bytes")
