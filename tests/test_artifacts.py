from pathlib import Path

import pytest

from satpipe.artifacts import atomic_dir, dir_digest, read_manifest, write_manifest
from satpipe.errors import ManifestError
from satpipe.versioning import code_digest


def test_atomic_dir_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("new")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "new"


def test_atomic_dir_replaces_an_earlier_copy(tmp_path: Path) -> None:
    for text in ("one", "two"):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / f"{text}.txt").write_text(text)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["two.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_dir_digest_follows_content_and_names_not_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    first = dir_digest(tmp_path)
    (tmp_path / ".DS_Store").write_text("litter")
    assert dir_digest(tmp_path) == first
    (tmp_path / "a" / "x.txt").write_text("2")
    assert dir_digest(tmp_path) != first
    (tmp_path / "a" / "x.txt").write_text("1")
    (tmp_path / "a" / "x.txt").rename(tmp_path / "a" / "y.txt")
    assert dir_digest(tmp_path) != first


def test_manifests_name_their_stage(tmp_path: Path) -> None:
    write_manifest(tmp_path, "prepare", classes=["a"])
    assert read_manifest(tmp_path, "prepare")["classes"] == ["a"]
    with pytest.raises(ManifestError, match="written by stage 'prepare', expected 'train'"):
        read_manifest(tmp_path, "train")
    with pytest.raises(ManifestError, match="missing"):
        read_manifest(tmp_path / "nowhere")


def test_code_digest_changes_with_library_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakelib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "helper.py").write_text("def f():\n    return 1\n")
    task = tmp_path / "task.py"
    task.write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest("fakelib.sub", extra_files=(task,))
    assert code_digest("fakelib.sub", extra_files=(task,)) == before
    (package / "sub" / "helper.py").write_text("def f():\n    return 2\n")
    assert code_digest("fakelib.sub", extra_files=(task,)) != before
    (package / "sub" / "helper.py").write_text("def f():\n    return 1\n")
    task.write_text("x = 2\n")
    assert code_digest("fakelib.sub", extra_files=(task,)) != before
