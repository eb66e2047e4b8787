"""Read an offline W&B run's transaction log (``run-*.wandb``) back into history rows.

The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks of
records, each with a 7-byte header (crc32, length, type: full/first/middle/last) and a protobuf
``Record`` as payload. wandb no longer ships a Python reader, so tests use this one.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer too short for a header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            out.append(record)
            pending = b""
        elif kind in (FIRST, MIDDLE):
            pending += chunk
    return out


def history(path: Path) -> list[dict[str, Any]]:
    """Every logged history row as a dict of key -> value."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def config(path: Path) -> dict[str, Any]:
    """The run's config as logged: what ``wandb.init`` was given (in the run record), then every update."""
    values: dict[str, Any] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            values.update({u.key: json.loads(u.value_json) for u in updates if u.key != "_wandb"})
    return values


def run_record(path: Path) -> Any:
    """The run record: id, display name, project, whether it resumes an earlier part."""
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")


def table(path: Path, logged_path: str) -> dict[str, Any]:
    """A table logged to the run, by the ``path`` its history row names (below the run's files folder)."""
    return json.loads((Path(path).parent / "files" / logged_path).read_text())
