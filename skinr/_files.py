"""Files skinr writes: whole or not at all, with the user's usual permissions."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "user_umask"]


def user_umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file of this process's own.

    Two writers of one path (parallel workers) never write into one file, a reader
    never sees half a file, and the last complete write wins the rename. The file gets
    the user's umask (``mkstemp`` would leave it private). ``sync`` flushes it to disk
    before the rename (a checkpoint must survive the machine going down).
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if sync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~user_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
