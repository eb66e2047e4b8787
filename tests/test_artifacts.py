from pathlib import Path

import pytest

from satpipe.artifacts import atomic_dir, dir_digest, read_manifest, write_manifest
from satpipe.errors import ManifestError


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


def test_a_failed_block_leaves_no_run_folder_it_made_and_nothing_else(tmp_path: Path) -> None:
    runs = tmp_path / "artifacts" / "runs"
    with pytest.raises(RuntimeError), atomic_dir(runs / "failed-run" / "prepare-1") as tmp:
        raise RuntimeError("bad chip")
    assert not (runs / "failed-run").exists() and runs.is_dir()  # the run's folder is gone, its parent stays
    (runs / "users-empty-folder").mkdir()
    with pytest.raises(RuntimeError), atomic_dir(runs / "users-empty-folder" / "out") as tmp:
        raise RuntimeError("crash")
    assert (runs / "users-empty-folder").is_dir()  # not made by the failed block: kept
    with atomic_dir(runs / "run" / "synthesize-1") as tmp:
        (tmp / "a.txt").write_text("kept")
    with pytest.raises(RuntimeError), atomic_dir(runs / "run" / "prepare-1") as tmp:
        raise RuntimeError("bad chip")
    assert [p.name for p in (runs / "run").iterdir()] == ["synthesize-1"]  # an earlier stage's output keeps it


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


def test_a_cached_output_is_usable_only_while_its_manifest_is_the_one_cached(tmp_path: Path) -> None:
    from satpipe.artifacts import content_key, output_problem

    root = tmp_path / "artifacts"
    out = root / "runs" / "r" / "train-1"
    write_manifest(out, "train", run="r")
    key = content_key(out)
    manifest = (out / "manifest.json").read_bytes()
    assert key.startswith(dir_digest(out)) and output_problem(str(out), key, manifest, root) is None
    assert content_key(out, identity="listing-20") == "listing-20"  # a download keyed by its file list
    (tmp_path / "data").mkdir()
    assert content_key(tmp_path / "data") == dir_digest(tmp_path / "data")  # a data folder, no manifest
    assert output_problem(str(out), "listing-20", b"{}", root) is None  # rewritten in place: only there counts
    assert "is gone" in output_problem(str(out), key, None, root)
    write_manifest(out, "train", run="another")  # the same folder written again by another run
    assert "written again" in output_problem(str(out), key, (out / "manifest.json").read_bytes(), root)
    elsewhere = tmp_path / "other-clone" / "artifacts"
    assert "outside this checkout's artifacts" in output_problem(str(out), key, manifest, elsewhere)
    assert output_problem("s3://bucket/raw/train-1", key, manifest, None) is None  # remote: no local root
