"""Files only the bot's user may read: the data directory, the database, agent logs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO


def private_dir(path: Path) -> Path:
    """Create a directory (and its parents) if needed and make it 0700, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask and leaves an existing directory as it was.
    with contextlib.suppress(PermissionError):  # a mount point owned by someone else
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create a file if needed and make it 0600, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def open_private(path: Path) -> BinaryIO:
    """Open a file for appending bytes, created 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")
