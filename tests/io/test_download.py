import hashlib
import socket
from pathlib import Path

import pytest

from satpipe.errors import ChecksumError, DownloadError
from satpipe.io.download import RemoteFile, download
from tests.httpserver import FileServer, serve

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, a few read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def remote(server: FileServer, **kw: object) -> RemoteFile:
    return RemoteFile(url=server.url_for("data.bin"), filename="data.bin", **kw)  # type: ignore[arg-type]


def test_download_verifies_and_places_file(tmp_path: Path) -> None:
    with serve(FileServer(files={"data.bin": PAYLOAD})) as server:
        path = download(remote(server, checksum=f"sha256:{SHA}", size=len(PAYLOAD)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with serve(FileServer(files={"data.bin": PAYLOAD})) as server, pytest.raises(ChecksumError) as err:
        download(remote(server, checksum=f"sha256:{wrong}"), tmp_path, progress=False)
    assert "data.bin" in str(err.value) and wrong in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the final file nor the .part survives


def test_a_transfer_that_breaks_off_is_resumed_with_range(tmp_path: Path) -> None:
    state = FileServer(files={"data.bin": PAYLOAD}, cut_after={"data.bin": 300_000})
    with serve(state) as server:
        path = download(remote(server, checksum=f"sha256:{SHA}", size=len(PAYLOAD)), tmp_path, progress=False,
                        backoff_s=0.01)  # fmt: skip
    assert path.read_bytes() == PAYLOAD
    assert state.requests == [("data.bin", None), ("data.bin", "bytes=300000-")]


def test_transient_server_errors_are_retried(tmp_path: Path) -> None:
    state = FileServer(files={"data.bin": PAYLOAD}, fail={"data.bin": [503, 502]})
    with serve(state) as server:
        path = download(remote(server, checksum=f"sha256:{SHA}"), tmp_path, progress=False, backoff_s=0.01)
    assert path.read_bytes() == PAYLOAD and len(state.requests) == 3


def test_a_server_that_keeps_failing_stops_with_one_line_and_the_next_call_resumes(tmp_path: Path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:300_000])  # what an interrupted transfer left
    state = FileServer(files={"data.bin": PAYLOAD}, fail={"data.bin": [503, 503, 503]})
    with serve(state) as server:
        spec = remote(server, checksum=f"sha256:{SHA}", size=len(PAYLOAD))
        with pytest.raises(DownloadError) as err:
            download(spec, tmp_path, progress=False, retries=2, backoff_s=0.01)
        assert str(err.value) == (
            f"download of {spec.url} failed 3 times (HTTP 503 Service Unavailable); run again to resume"
        )
        assert (tmp_path / "data.bin.part").stat().st_size == 300_000
        path = download(spec, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert state.requests == [("data.bin", "bytes=300000-")] * 4


def test_size_mismatch_is_refused(tmp_path: Path) -> None:
    with serve(FileServer(files={"data.bin": PAYLOAD})) as server, pytest.raises(ChecksumError, match="size"):
        download(remote(server, size=len(PAYLOAD) + 1), tmp_path, progress=False)


def test_existing_verified_file_is_not_fetched_again(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(PAYLOAD)
    state = FileServer(files={"data.bin": PAYLOAD})
    with serve(state) as server:
        download(remote(server, checksum=f"sha256:{SHA}"), tmp_path, progress=False)
    assert state.requests == []


def test_missing_file_names_the_http_status_at_once(tmp_path: Path) -> None:
    with serve(FileServer()) as server, pytest.raises(DownloadError, match="HTTP 404"):
        download(remote(server), tmp_path, progress=False)
    assert len(server.requests) == 1  # a permanent answer is not asked again


def test_no_network_gives_one_clear_error_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = RemoteFile(url=f"http://127.0.0.1:{port}/EuroSAT.zip", filename="EuroSAT.zip")
    with pytest.raises(DownloadError) as err:
        download(spec, tmp_path, offline_hint="pass --data-dir PATH", progress=False)
    message = str(err.value)
    assert "cannot reach" in message and "--data-dir" in message and "\n" not in message


def test_checksum_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="sha256"):
        RemoteFile(url="http://x", filename="x", checksum="crc32:abcd")
