"""Files the product writes hold student data: they are created owner-only.

The database and its `-wal` / `-shm` (SQLite gives those the database file's mode), error
reports, downloads and the `var/` directory: files 0600, directories 0700, whatever the
process's umask.  A file that already exists is narrowed to 0600 when it is written again.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; an existing directory is left as it is
    (it may be the operator's own, like the current directory)."""
    path = Path(path)
    if not path.is_dir():
        for missing in reversed([p for p in (path, *path.parents) if not p.exists()]):
            missing.mkdir(mode=DIR_MODE, exist_ok=True)
            os.chmod(missing, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
    finally:
        os.close(fd)


def touch_private(path: Path) -> None:
    """Create `path` empty as 0600 if it does not exist (a SQLite database before SQLite
    creates it with the umask's mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
