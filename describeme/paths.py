"""Per-user folders: one place decides where describeme keeps its data."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$XDG_DATA_HOME/describeme``, or ``~/.local/share/describeme``.

    Holds the embedded Redis (data, password, log), the sink's retry spool and the annotated
    videos of ``describeme run``.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "describeme"
