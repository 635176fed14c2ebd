"""Read an offline W&B run file (run-*.wandb): LevelDB-style log records holding protobuf Records.

wandb 0.31 has no Python reader for its offline files, so tests use this one to check what a
run logged without any network."""
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7  # ":W&B" + magic (2) + version (1)


def records(path):
    from wandb.proto import wandb_internal_pb2 as pb
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, parts = HEADER, []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        parts.append(chunk)
        if kind in (1, 4):  # FULL or LAST: a whole record
            r = pb.Record()
            r.ParseFromString(b"".join(parts))
            parts = []
            yield r


def logged_keys(path) -> set:
    """Every key the run logged to its history or summary."""
    keys = set()
    for r in records(path):
        kind = r.WhichOneof("record_type")
        items = r.history.item if kind == "history" else r.summary.update if kind == "summary" else []
        for it in items:
            keys.add(it.key or "/".join(it.nested_key))
    return keys


def keys_when_written(find_file, expected, timeout: float = 30.0) -> set:
    """Keys of the run file that `find_file()` returns, read again until `expected` is among them or
    `timeout` seconds pass. The offline file is written by W&B's service process, which can still be
    flushing when `wandb.finish()` returns on a busy machine; the caller asserts on what it gets."""
    import time
    end = time.monotonic() + timeout
    while True:
        path = find_file()
        keys = logged_keys(path) if path is not None else set()
        if set(expected) <= keys or time.monotonic() > end:
            return keys
        time.sleep(0.5)
