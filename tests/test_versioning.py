"""Stage versions follow the code each stage runs, found through its imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture
def fakelib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package whose modules import each other: a <- b, and c imported by nobody; a template beside them."""
    package = tmp_path / "fakelib"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import json\nfrom fakelib import b\n")
    (package / "b.py").write_text("def f():\n    from . import shared\n    return 1\n")
    (package / "shared.py").write_text("X = 1\n")
    (package / "c.py").write_text("Y = 1\n")
    (package / "templates" / "page.html").write_text("<p>")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_a_module_counts_with_what_it_imports_and_nothing_else(fakelib: Path) -> None:
    from satpipe.versioning import code_digest, import_closure

    assert sorted(import_closure(["fakelib.a"], within={"fakelib"})) == [
        "fakelib/__init__.py", "fakelib/a.py", "fakelib/b.py", "fakelib/shared.py", "fakelib/templates/page.html",
    ]  # fmt: skip
    before = code_digest("fakelib.a")
    (fakelib / "c.py").write_text("Y = 2\n")  # not imported by a
    assert code_digest("fakelib.a") == before
    (fakelib / "shared.py").write_text("X = 2\n")  # imported lazily, inside a function of b
    assert code_digest("fakelib.a") != before
    before = code_digest("fakelib.a")
    (fakelib / "templates" / "page.html").write_text("<p>changed")
    assert code_digest("fakelib.a") != before


def test_a_function_is_versioned_by_its_own_imports_not_its_neighbours(fakelib: Path) -> None:
    from satpipe.versioning import function_version

    (fakelib / "tasks.py").write_text(
        "import os\n\ndef uses_b():\n    from fakelib import b\n\ndef uses_c():\n    from fakelib import c\n"
    )
    import fakelib.tasks as tasks  # type: ignore[import-not-found]

    b_version, c_version = (function_version(f, within={"fakelib"}) for f in (tasks.uses_b, tasks.uses_c))
    (fakelib / "c.py").write_text("Y = 3\n")
    assert function_version(tasks.uses_b, within={"fakelib"}) == b_version
    assert function_version(tasks.uses_c, within={"fakelib"}) != c_version


#: Prints every stage task's cache version, as Flyte computes it before a cache lookup.
PRINT_VERSIONS = """
import importlib, json, satpipe
from flyte._cache.cache import VersionParameters
versions = {"satpipe": satpipe.__file__}
for name in ("download", "prepare", "train", "evaluate", "report"):
    module = importlib.import_module("tasks." + name)
    for task in vars(module).values():
        if hasattr(task, "func") and hasattr(task, "cache") and task.func.__module__ == module.__name__:
            versions[task.func.__name__] = task.cache.get_version(VersionParameters(func=task.func, image=task.image))
print(json.dumps(versions))
"""


def _task_versions(*projects: Path) -> list[dict[str, str]]:
    """Each project copy's task versions, computed in fresh interpreters side by side."""
    runs = [
        subprocess.Popen([sys.executable, "-c", PRINT_VERSIONS], cwd=project, stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": f"{project / 'src'}{os.pathsep}{project}"})
        for project in projects
    ]  # fmt: skip
    found = []
    for project, run in zip(projects, runs, strict=True):
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0
        versions = json.loads(out.splitlines()[-1])
        assert Path(versions.pop("satpipe")).is_relative_to(project)  # the copy's library, not the installed one
        found.append(versions)
    return found


def _copy_with_edit(tmp_path: Path, name: str, edited: str | None) -> Path:
    copy = tmp_path / name
    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("src", "tasks", "envs"):
        shutil.copytree(PROJECT_ROOT / part, copy / part, ignore=ignore)
    for part in ("config.py", "pyproject.toml", "uv.lock"):
        shutil.copy(PROJECT_ROOT / part, copy / part)
    if edited:
        path = copy / "src" / edited
        path.write_text(path.read_text() + "\n# edited\n")
    return copy


def test_editing_one_datasets_reader_changes_only_the_stages_that_run_it(tmp_path: Path) -> None:
    projects = [
        _copy_with_edit(tmp_path, name, edit)
        for name, edit in (
            ("original", None),
            ("eurosat", "satpipe/io/eurosat.py"),
            ("cloudmask", "satpipe/io/cloudmask.py"),
        )
    ]
    original, eurosat, cloudmask = _task_versions(*projects)

    def changed(versions: dict[str, str]) -> set[str]:
        return {task for task, version in versions.items() if version != original[task]}

    assert changed(eurosat) == {"download_eurosat", "synthesize_eurosat", "prepare_eurosat"}
    cloudmask_stages = {"download_cloudmask", "synthesize_cloudmask", "prepare_cloudmask_patches", "evaluate_cloudmask"}
    assert cloudmask_stages <= changed(cloudmask)
    assert not changed(cloudmask) & {"download_eurosat", "synthesize_eurosat", "prepare_eurosat", "synthesize_clouds",
                                     "prepare_cloud_patches", "prepare_unlabelled_patches"}  # fmt: skip
