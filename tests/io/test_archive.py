import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from satpipe.errors import DataError, UnsafeArchiveError
from satpipe.io.archive import extract_archive


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_zip_extracts_into_target(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"2750/Forest/Forest_1.jpg": b"x", "readme.txt": b"y"})
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "2750/Forest/Forest_1.jpg").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/abs/escape.txt", "C:/escape.txt"])
def test_zip_entry_escaping_target_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", name: b"pwned"})
    with pytest.raises(UnsafeArchiveError, match="outside the extraction folder"):
        extract_archive(archive, tmp_path / "sub" / "out")
    # Entries are checked before anything is written: the archive is all there is.
    assert [p.name for p in tmp_path.rglob("*")] == ["evil.zip"]


def test_tar_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tar_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("dir/file.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    assert (extract_archive(archive, tmp_path / "out") / "dir/file.txt").read_text() == "hello"


def test_corrupt_archive_gives_one_clear_error(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "good.zip", {"a.txt": b"a" * 10_000})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated.zip"):
        extract_archive(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_crc_error_mid_extraction_leaves_no_output(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.txt": b"a" * 10_000})
    data = bytearray(archive.read_bytes())
    offset = data.index(b"a.txt") + len("a.txt")  # first bytes of the stored (uncompressed) content
    data[offset + 10] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="a.zip"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
