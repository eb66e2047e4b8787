"""CloudMask's download against a local S3-like HTTP server: listing, subset, resume, sizes, missing files."""

import json
from pathlib import Path

import pytest

from satpipe.errors import ChecksumError, DownloadError
from satpipe.io import cloudmask
from satpipe.io.cloudmask import BUCKET, FILELIST, PREFIXES, fetch, listing_url
from tests.httpserver import FileServer, serve

FILES = {
    "train": {f"S3A_SL_1_RBT____2019050{i}_train.hdf": bytes([i]) * (300_000 + i) for i in range(1, 4)},
    "test": {"S3A_SL_1_RBT____20190510_test.hdf": b"t" * 123_456, "S3A_SL_1_RBT____20190511_test.hdf": b"u" * 1000},
}


def listing_page(keys: list[tuple[str, int]], token: str | None) -> bytes:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>{s}</Size></Contents>" for k, s in keys)
    more = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{contents}{more or '<IsTruncated>false</IsTruncated>'}</ListBucketResult>"
    ).encode()


def object_store(sizes: dict[str, int] | None = None) -> FileServer:
    """The benchmark's two prefixes, each listed in two pages, plus a README that is not a scene."""
    state = FileServer()
    for split, files in FILES.items():
        prefix = PREFIXES[split]
        keys = [(f"{prefix}/{name}", (sizes or {}).get(name, len(data))) for name, data in files.items()]
        keys.append((f"{prefix}/README.txt", 10))
        state.files[listing_url("", BUCKET, prefix).lstrip("/")] = listing_page(keys[:1], "page2")
        state.files[listing_url("", BUCKET, prefix, "page2").lstrip("/")] = listing_page(keys[1:], None)
        for name, data in files.items():
            state.files[f"{BUCKET}/{prefix}/{name}"] = data
    return state


def test_fetch_lists_every_page_and_downloads_a_subset(tmp_path: Path) -> None:
    with serve(object_store()) as server:
        root = fetch(tmp_path, max_files=2, endpoint=server.url, progress=False)
        listings = [path for path, _ in server.requests if "list-type" in path]
    assert len(listings) == 4  # two pages for each split
    assert sorted(p.name for p in (root / "one-day").iterdir()) == sorted(FILES["train"])[:2]
    assert sorted(p.name for p in (root / "ssts").iterdir()) == sorted(FILES["test"])
    for name in sorted(FILES["train"])[:2]:
        assert (root / "one-day" / name).read_bytes() == FILES["train"][name]
    listed = json.loads((root / FILELIST).read_text())
    assert [Path(k).name for k, _ in listed["train"]] == sorted(FILES["train"])  # the README is not a scene
    assert cloudmask.list_files(root, "train", max_files=2) == sorted((root / "one-day").iterdir())


def test_a_second_fetch_uses_the_saved_list_and_downloads_only_what_is_missing(tmp_path: Path) -> None:
    with serve(object_store()) as server:
        fetch(tmp_path, max_files=1, endpoint=server.url, progress=False)
        server.requests.clear()
        fetch(tmp_path, endpoint=server.url, progress=False)
        fetched = [Path(path).name for path, _ in server.requests]
    assert not any("list-type" in name for name in fetched)
    assert sorted(fetched) == sorted(FILES["train"])[1:] + sorted(FILES["test"])[1:]


def test_interrupted_file_resumes_with_a_range_request(tmp_path: Path) -> None:
    name = sorted(FILES["train"])[0]
    state = object_store()
    state.cut_after[f"{BUCKET}/{PREFIXES['train']}/{name}"] = 100_000
    with serve(state) as server:
        with pytest.raises(DownloadError, match="run again to resume"):
            fetch(tmp_path, max_files=1, endpoint=server.url, progress=False)
        assert (tmp_path / "one-day" / f"{name}.part").stat().st_size == 100_000
        fetch(tmp_path, max_files=1, endpoint=server.url, progress=False)
        ranges = [r for path, r in server.requests if path.endswith(name)]
    assert ranges == [None, "bytes=100000-"]
    assert (tmp_path / "one-day" / name).read_bytes() == FILES["train"][name]


def test_a_file_of_the_wrong_size_is_refused_and_deleted(tmp_path: Path) -> None:
    name = sorted(FILES["train"])[0]
    with serve(object_store(sizes={name: 999})) as server, pytest.raises(ChecksumError) as err:
        fetch(tmp_path, max_files=1, endpoint=server.url, progress=False)
    assert name in str(err.value) and "expected 999" in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "one-day").iterdir())


def test_a_listed_file_missing_on_the_server_names_it(tmp_path: Path) -> None:
    state = object_store()
    name = sorted(FILES["test"])[1]
    del state.files[f"{BUCKET}/{PREFIXES['test']}/{name}"]
    with serve(state) as server, pytest.raises(DownloadError) as err:
        fetch(tmp_path, endpoint=server.url, progress=False)
    assert name in str(err.value) and "HTTP 404" in str(err.value)
    assert (tmp_path / "one-day").is_dir() and not (tmp_path / "ssts" / name).exists()


def test_offline_stops_at_once_and_says_what_to_do(tmp_path: Path) -> None:
    with serve(FileServer()) as server:
        closed = server.url  # nothing listens there once the server stops
    with pytest.raises(DownloadError) as err:
        fetch(tmp_path, endpoint=closed, progress=False)
    assert "cannot list" in str(err.value) and "--data-dir" in str(err.value)
    assert not (tmp_path / FILELIST).exists()
