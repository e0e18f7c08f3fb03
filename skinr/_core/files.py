"""Files skinr writes: whole or not at all, with the user's usual permissions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_target", "atomic_write", "user_umask"]


def user_umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, *, mode: int = 0o666, suffix: str = ".tmp"):
    """A temporary path beside ``path`` for a producer to write (an encoder, a compiler);
    when the block ends without error it gets ``mode`` under the user's umask
    (``mkstemp`` would leave it private) and replaces ``path`` in one rename.

    Two writers of one path (parallel workers) never write into one file, a reader
    never sees half a file, and the last complete write wins the rename; on an error
    the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode & ~user_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_target`. ``sync`` flushes it to
    disk before the rename (a checkpoint must survive the machine going down)."""
    with atomic_target(path) as tmp, open(tmp, "wb") as stream:
        stream.write(data)
        if sync:
            stream.flush()
            os.fsync(stream.fileno())
    return Path(path)
