"""The ``dataset.yaml`` that describes a user's own dataset (the files it names: :mod:`satpipe.io.dataset_files`).

A description sits at the root of a data folder::

    name: my land cover                    # optional
    task: segmentation                     # or classification
    classes: [background, building, road]  # list index = mask value; or a mapping {mask value: name}
    ignore_index: 255                      # mask value of unlabelled pixels (optional)
    bands: [blue, green, red, nir]         # names in file band order (optional; the count is checked)
    nodata: 0                              # image value of pixels without data (optional)
    images: "images/*.tif"                 # glob(s) relative to this file; classification: "{class}/*.tif"
    masks: "masks/{stem}.tif"              # segmentation: {stem} = image file stem, {parent} = its folder
    splits: {val: val.txt, test: "test/*.tif"}   # optional: a list of stems (.txt) or a glob per split
    colors: {building: "#d7301f"}          # optional, per class name; a default palette otherwise

Class ids are contiguous (``0 .. K-1``, in order of mask value); :meth:`DatasetDescription.class_ids`
maps mask values to them and every other value (``ignore_index``, anything else) to :data:`IGNORE`.
Every problem is reported as one line naming the file and the key. Parsing never executes anything
from the file (YAML safe loading, a fixed set of template fields).
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from satpipe.errors import DataError, DatasetNotFoundError

FILENAME = "dataset.yaml"
TASKS = ("segmentation", "classification")
SPLITS = ("train", "val", "test")
IGNORE = 255  #: class id of pixels that count in no loss and no metric (as in segmentation patches)
MAX_CLASSES = 255
KEYS = ("name", "task", "classes", "ignore_index", "bands", "nodata", "images", "masks", "splits", "colors")
REQUIRED = ("task", "classes", "images")
MASK_FIELDS = ("stem", "parent")
#: Colours given to classes without one in ``colors`` (in class order, then repeated).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class DatasetDescription:
    """A validated ``dataset.yaml``: class ``k`` has name ``classes[k]``, mask value ``values[k]``."""

    path: Path
    name: str
    task: str
    classes: tuple[str, ...]
    values: tuple[int, ...]
    ignore_index: int | None
    bands: tuple[str, ...] | None
    nodata: float | None
    images: tuple[str, ...]
    masks: str | None
    splits: dict[str, str]
    colors: tuple[str, ...]

    @property
    def root(self) -> Path:
        """The folder that holds the description; every pattern is relative to it."""
        return self.path.parent

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self.classes)

    def lookup(self) -> np.ndarray:
        """Table from mask value to class id (uint8, :data:`IGNORE` for every value that is not a class)."""
        table = np.full(max(self.values) + 1, IGNORE, np.uint8)
        table[list(self.values)] = np.arange(len(self.values), dtype=np.uint8)
        return table

    def class_ids(self, mask: np.ndarray) -> np.ndarray:
        """Mask values -> class ids ``0 .. K-1``; :data:`IGNORE` for ``ignore_index`` and unknown values."""
        table = self.lookup()
        values = mask.astype(np.int64)
        inside = (values >= 0) & (values < len(table))
        return np.where(inside, table[np.clip(values, 0, len(table) - 1)], IGNORE).astype(np.uint8)

    def rgb_colors(self) -> list[tuple[int, int, int]]:
        """Class colours as 0-255 RGB triples, in class order."""
        return [hex_rgb(c) for c in self.colors]


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``"#a6d96a"`` -> ``(166, 217, 106)``."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loading that refuses a key given twice (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def description_error(path: Path, key: str | None, problem: str) -> DataError:
    """The one-line error for a problem with ``key`` of the description at ``path``."""
    return DataError(f"{path}: {key + ': ' if key else ''}{problem}")


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", type(None): "empty"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _expect(path: Path, key: str, value: object, kinds: type | tuple[type, ...], wanted: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kinds):  # YAML's true/false are ints to Python
        raise description_error(path, key, f"expected {wanted}, got {_type_name(value)} ({value!r})")


def _pattern(path: Path, key: str, pattern: object) -> str:
    _expect(path, key, pattern, str, "a glob relative to the description, such as 'images/*.tif'")
    assert isinstance(pattern, str)
    if not pattern.strip():
        raise description_error(path, key, "the pattern is empty")
    if Path(pattern).is_absolute() or pattern.startswith("~"):
        raise description_error(
            path, key, f"{pattern!r} is absolute; patterns are relative to the folder of {FILENAME}"
        )
    if any(part == "**" for part in PurePosixPath(pattern).parts[-1:]) or re.search(r"\*\*[^/]|[^/]\*\*", pattern):
        raise description_error(
            path, key, f"bad glob {pattern!r}: '**' must be a whole folder level and not the file name"
        )
    if pattern.count("[") != pattern.count("]"):
        raise description_error(path, key, f"bad glob {pattern!r}: unbalanced '['")
    return pattern


def _classes(path: Path, raw: object) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if isinstance(raw, list):
        pairs = list(enumerate(raw))
    elif isinstance(raw, dict):
        for value in raw:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise description_error(path, "classes", f"mask value {value!r} is not a whole number >= 0")
        pairs = sorted(raw.items())
    else:
        wanted = "a list of names or a mapping {mask value: name}"
        raise description_error(path, "classes", f"expected {wanted}, got {_type_name(raw)}")
    if not 2 <= len(pairs) <= MAX_CLASSES:
        raise description_error(path, "classes", f"{len(pairs)} class(es); between 2 and {MAX_CLASSES} are supported")
    names: list[str] = []
    for value, name in pairs:
        if not isinstance(name, str) or not name.strip():
            raise description_error(
                path, "classes", f"the name of mask value {value} is {name!r}; names are non-empty strings"
            )
        if name in names:
            raise description_error(path, "classes", f"class name {name!r} appears twice")
        names.append(name)
    return tuple(names), tuple(int(v) for v, _ in pairs)


def _colors(path: Path, raw: object, classes: tuple[str, ...]) -> tuple[str, ...]:
    given: dict[str, str] = {}
    if raw is not None:
        _expect(path, "colors", raw, dict, "a mapping {class name: '#rrggbb'}")
        assert isinstance(raw, dict)
        for name, color in raw.items():
            if name not in classes:
                raise description_error(path, "colors", f"{name!r} is not a class{suggest(str(name), classes)}")
            if not isinstance(color, str) or not _HEX.match(color):
                raise description_error(path, f"colors.{name}", f"{color!r} is not a colour of the form '#rrggbb'")
            given[name] = color.lower()
    return tuple(given.get(name, PALETTE[k % len(PALETTE)]) for k, name in enumerate(classes))


def _mask_template(path: Path, raw: object, task: str) -> str | None:
    if task == "classification":
        if raw is not None:
            raise description_error(
                path, "masks", "classification datasets have no masks; the folder of each image is its class"
            )
        return None
    if raw is None:
        raise description_error(
            path, "masks", "missing key: segmentation needs the mask of each image, e.g. 'masks/{stem}.tif'"
        )
    template = _pattern(path, "masks", raw)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise description_error(path, "masks", f"bad template {template!r} ({e})") from None
    for name in fields:
        if name not in MASK_FIELDS:
            hint = suggest(name, MASK_FIELDS)
            raise description_error(path, "masks", f"unknown field {{{name}}}{hint}; use {{stem}} and {{parent}}")
    if "stem" not in fields:
        raise description_error(
            path, "masks", f"{template!r} does not contain {{stem}}, so every image would share one mask"
        )
    return template


def _load(path: Path) -> dict[str, Any]:
    """The file's mapping of keys, with unknown and missing keys refused."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise description_error(path, None, f"not valid YAML ({where}{problem})") from None
    except UnicodeDecodeError:
        raise description_error(path, None, "not a text file (UTF-8)") from None
    if not isinstance(raw, dict):
        raise description_error(
            path, None, f"expected a mapping of keys ({', '.join(REQUIRED)}, ...), got {_type_name(raw)}"
        )
    for key in raw:
        if key not in KEYS:
            raise description_error(
                path, None, f"unknown key {key!r}{suggest(str(key), KEYS)}; known keys: {', '.join(KEYS)}"
            )
    for key in REQUIRED:
        if key not in raw:
            raise description_error(path, key, "missing key")
    return raw


def _ignore_index(path: Path, raw: object, task: str, classes: tuple[str, ...], values: tuple[int, ...]) -> int | None:
    if raw is None:
        return None
    if task == "classification":
        raise description_error(path, "ignore_index", "only segmentation masks have unlabelled pixels")
    _expect(path, "ignore_index", raw, int, "a whole number (the mask value of unlabelled pixels)")
    assert isinstance(raw, int)
    if raw in values:
        raise description_error(
            path, "ignore_index", f"{raw} is also the mask value of class {classes[values.index(raw)]!r}"
        )
    return raw


def _bands(path: Path, raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    _expect(path, "bands", raw, list, "a list of band names in file order")
    assert isinstance(raw, list)
    if not raw or not all(isinstance(b, str) and b.strip() for b in raw) or len(set(raw)) != len(raw):
        raise description_error(path, "bands", f"{raw!r}: names must be non-empty, distinct strings")
    return tuple(raw)


def _images(path: Path, raw: object, task: str) -> tuple[str, ...]:
    patterns = raw if isinstance(raw, list) else [raw]
    if not patterns:
        raise description_error(path, "images", "the list of globs is empty")
    for pattern in map(lambda p: _pattern(path, "images", p), patterns):
        if task == "classification" and "{class}" not in pattern:
            raise description_error(path, "images", f"{pattern!r} needs {{class}} where each class's folder name goes")
        if task == "segmentation" and "{class}" in pattern:
            raise description_error(
                path, "images", f"{pattern!r}: {{class}} is for classification; masks give the classes"
            )
    return tuple(patterns)


def _splits(path: Path, raw: object) -> dict[str, str]:
    splits = raw or {}
    _expect(path, "splits", splits, dict, "a mapping {split: list file (.txt) or glob}")
    assert isinstance(splits, dict)
    for split, source in splits.items():
        if split not in SPLITS:
            hint = suggest(str(split), SPLITS)
            raise description_error(path, "splits", f"unknown split {split!r}{hint}; use {', '.join(SPLITS)}")
        _pattern(path, f"splits.{split}", source)
    return dict(splits)


def read_description(location: Path | str) -> DatasetDescription:
    """Read and validate ``dataset.yaml`` (a data folder or the file itself); nothing on disk is listed yet.

    Raises:
        DatasetNotFoundError: If the folder or its ``dataset.yaml`` does not exist.
        DataError: If the file is not valid YAML or a key is unknown, missing or has a bad value.
    """
    path = Path(location)
    path = path / FILENAME if path.is_dir() else path
    if not path.is_file():
        where = path.parent if path.name == FILENAME else path
        raise DatasetNotFoundError(f"{where}: no {FILENAME} found; describe the dataset in one (see README)")
    raw = _load(path)
    task = raw["task"]
    if task not in TASKS:
        raise description_error(path, "task", f"{task!r} is not one of {', '.join(TASKS)}{suggest(str(task), TASKS)}")
    classes, values = _classes(path, raw["classes"])
    nodata = raw.get("nodata")
    if nodata is not None:
        _expect(path, "nodata", nodata, (int, float), "a number (the image value of pixels without data)")
    name = raw.get("name", path.parent.name)
    _expect(path, "name", name, str, "a string")
    return DatasetDescription(
        path=path,
        name=name,
        task=task,
        classes=classes,
        values=values,
        ignore_index=_ignore_index(path, raw.get("ignore_index"), task, classes, values),
        bands=_bands(path, raw.get("bands")),
        nodata=nodata,
        images=_images(path, raw["images"], task),
        masks=_mask_template(path, raw.get("masks"), task),
        splits=_splits(path, raw.get("splits")),
        colors=_colors(path, raw.get("colors"), classes),
    )
