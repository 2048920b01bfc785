"""Read a W&B offline run file (`run-<id>.wandb`) back with W&B's own protobuf definitions.

The SDK (0.31) no longer ships a Python reader of its transaction log (`wandb.sdk.internal.datastore`
moved into the Go core), so this walks the log's framing (LevelDB's log format, as W&B documents it: a
7-byte header ':W&B', 0xBEE1, version 0; 32 KiB blocks of records with a CRC-32, a length and a type
FULL/FIRST/MIDDLE/LAST) and decodes every record as `wandb.proto.wandb_internal_pb2.Record`."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<HB", data[4:7]) == (0xBEE1, 0), data[:7]
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        body = data[pos + HEADER : pos + HEADER + length]
        if kind == 0 and length == 0:
            break
        assert zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum, f"{path}: bad CRC at {pos}"
        pos += HEADER + length
        pending = body if kind in (FULL, FIRST) else pending + body
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def history(path: Path) -> dict[int, dict[str, float]]:
    """step -> {key: value} of every history record (each step once; a second one fails the test)."""
    steps: dict[int, dict[str, float]] = {}
    for record in records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        step = record.history.step.num
        assert step not in steps, f"{path}: step {step} logged twice"
        items = {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in record.history.item}
        steps[step] = {k: v for k, v in items.items() if not k.startswith("_")}
    return steps


def config_and_tags(path: Path) -> tuple[dict, list[str]]:
    """The run's config (its last config record, values decoded) and tags, from its run record."""
    config, tags = {}, []
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            tags = list(record.run.tags)
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
    return config, tags
