"""Writing ``.npy`` arrays whose length is known only at the end, without holding them in memory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np


class NpyAppender:
    """Append items of a fixed shape and dtype; :meth:`close` writes ``path`` as a regular ``.npy``."""

    def __init__(self, path: Path, item_shape: tuple[int, ...], dtype: np.dtype | str) -> None:
        self.path, self.item_shape, self.dtype = Path(path), tuple(item_shape), np.dtype(dtype)
        self._raw_path = self.path.with_name(self.path.name + ".raw.partial")
        self._raw = open(self._raw_path, "wb")
        self.count = 0

    def append(self, item: np.ndarray) -> None:
        """Add one item (or several, stacked on a leading axis)."""
        item = np.ascontiguousarray(item, dtype=self.dtype)
        if item.shape == self.item_shape:
            item = item[None]
        if item.shape[1:] != self.item_shape:
            raise ValueError(f"{self.path.name}: item shape {item.shape[1:]} != {self.item_shape}")
        self._raw.write(item.tobytes())
        self.count += len(item)

    def close(self) -> Path:
        """Write the header and the data to ``path`` and remove the scratch file."""
        self._raw.close()
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.count, *self.item_shape),
        }
        tmp = self.path.with_name(self.path.name + ".partial")
        with open(tmp, "wb") as out, open(self._raw_path, "rb") as raw:
            np.lib.format.write_array_header_2_0(out, header)
            shutil.copyfileobj(raw, out, length=16 << 20)
        os.replace(tmp, self.path)
        self._raw_path.unlink()
        return self.path
