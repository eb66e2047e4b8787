"""Code versions for cache keys.

Flyte's automatic cache version hashes only a task function's own source, so an edit to library code
the task calls would not invalidate it. A stage's version is instead the digest of the source of the
code it runs: the module that defines it, and every project module that module and the task function
import, followed through their own imports. Modules are found by reading ``import`` statements, so a
stage that never imports a reader is not re-run when that reader is edited, and nothing has to be
declared by hand.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any


def code_digest(*modules: str, within: Iterable[str] | None = None, extra_files: tuple[Path, ...] = ()) -> str:
    """Return a short digest of the source of modules, of what they import, and of extra files.

    Args:
        *modules: Dotted module names. Importing one runs its parent packages' ``__init__`` too, so
            those count; a package also contributes its data files (templates, say).
        within: Top-level packages whose modules are followed through their imports (by default the
            packages of ``modules``). Imports from anywhere else (the standard library, third parties)
            are not followed.
        extra_files: More files to include (for example a script outside any package).

    Returns:
        The first 16 hex digits of a sha256 over the files' relative names and contents.
    """
    within = {name.split(".")[0] for name in modules} if within is None else set(within)
    files = {path.name: path for path in extra_files}
    files.update(import_closure(modules, within))
    h = hashlib.sha256()
    for label in sorted(files):
        h.update(label.encode() + b"\0" + files[label].read_bytes() + b"\0")
    return h.hexdigest()[:16]


def function_version(func: Callable[..., Any], within: Iterable[str]) -> str:
    """The digest of the code a function runs: its module, and what the module and the function import.

    Args:
        func: The function (decorators that set ``__wrapped__`` are looked through).
        within: Top-level packages followed through their imports. The packages the function
            imports from in its own body are followed too: that is code it runs, wherever it lives.

    Returns:
        :func:`code_digest` of the function's module file and of the modules it imports in its body
        and its module imports at the top level (not the imports in the bodies of its other functions).
    """
    func = inspect.unwrap(func)
    module_file = Path(inspect.getsourcefile(func) or "")
    body = imported_modules(ast.parse(textwrap.dedent(inspect.getsource(func))), func.__module__)
    top_level = imported_modules(_top_level(ast.parse(module_file.read_bytes())), func.__module__)
    followed = {*within, *(name.split(".")[0] for name in body)}
    imported = (name for name in body | top_level if name.split(".")[0] in followed)
    return code_digest(*sorted(imported), within=followed, extra_files=(module_file,))


def _top_level(tree: ast.Module) -> ast.Module:
    """The module without the bodies of its functions and classes."""
    definitions = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return ast.Module(body=[node for node in tree.body if not isinstance(node, definitions)], type_ignores=[])


def imported_modules(tree: ast.AST, module: str) -> set[str]:
    """Dotted names a syntax tree imports (at any depth), relative imports resolved against ``module``.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c``: ``c`` may be a module or a name in ``a.b``
    (:func:`import_closure` keeps only what exists as a module).
    """
    package = module if _is_package(module) else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def import_closure(modules: Iterable[str], within: Iterable[str]) -> dict[str, Path]:
    """The files that importing ``modules`` runs, following their imports into the packages ``within``.

    Modules are located, not imported: a stage's version must not cost the import of torch.

    Returns:
        Each file by its name relative to its top-level package's folder (``satpipe/io/eurosat.py``), never
        by absolute path, so a version computed on a laptop equals the one computed in the cluster's
        container.
    """
    within = frozenset(within)
    files: dict[str, Path] = {}
    pending, seen = list(modules), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for module, path in _module_files(name):
            label = path.relative_to(_root(module)).as_posix()
            if label in files:
                continue
            files[label] = path
            if path.suffix == ".py":
                pending.extend(n for n in _file_imports(module, path) if n.split(".")[0] in within)
    return files


def _module_files(name: str) -> list[tuple[str, Path]]:
    """What ``import name`` runs: each package's ``__init__`` (and data files) on the way, then the module."""
    found = []
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        module = ".".join(parts[:depth])
        path = _locate(module)
        if path is None:
            break  # a name defined in the module above, not a module of its own
        found.append((module, path))
        if path.name == "__init__.py":
            found.extend((module, data) for data in _data_files(path.parent))
    return found


@cache
def _file_imports(module: str, path: Path) -> frozenset[str]:
    # Imports anywhere in the file, functions included: which of its functions a stage calls is unknown.
    # Read once per process: the code a run versions does not change under it.
    return frozenset(imported_modules(ast.parse(path.read_bytes()), module))


def _locate(module: str) -> Path | None:
    """The file that defines ``module``, found on the import path without importing anything."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None or spec.origin in ("built-in", "frozen"):
        return None
    path = Path(spec.origin)
    for part in rest:
        if path.name != "__init__.py":
            return None
        package = path.parent / part / "__init__.py"
        path = package if package.is_file() else path.parent / f"{part}.py"
        if not path.is_file():
            return None
    return path


def _is_package(module: str) -> bool:
    path = _locate(module)
    return path is not None and path.name == "__init__.py"


def _data_files(folder: Path) -> list[Path]:
    """Files a package ships beside its modules: everything but Python source, caches and subpackages."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and path.name != "__pycache__" and not (path / "__init__.py").exists():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file() and path.suffix not in (".py", ".pyc"):
            found.append(path)
    return found


def _root(module: str) -> Path:
    """The folder that holds ``module``'s top-level package (or top-level module)."""
    top = _locate(module.split(".")[0])
    assert top is not None, module  # located before any of its submodules
    return top.parent.parent if top.name == "__init__.py" else top.parent


def git_commit(folder: Path) -> str:
    """The commit checked out at ``folder`` (12 hex digits, "+ local changes" when tracked files differ).

    Returns "unknown" where there is no git or no repository, as in a cluster image that holds the
    code without its history, so a report can always say something.
    """
    try:
        commit = _git(folder, "rev-parse", "--short=12", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + local changes" if changed else commit


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()
