"""Where a repository keeps its configuration (`mlops.yaml`) and its components: one
folder each under `components/`, named by its `component.yaml`.

Apart from `config` and `components`, which read and check them, so that a dry run
answered from the memo (mlops.services.planmemo) can find them without loading
YAML or the schema.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_FILE = "mlops.yaml"
COMPONENTS_DIR = "components"
COMPONENT_FILE = "component.yaml"


def component_folders(root: Path) -> list[str]:
    """Names of the folders under components/ that hold a component.yaml."""
    return [name for name, _file in component_files(root)]


def component_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """(folder name, `lstat` of its component.yaml) of each folder under components/
    that holds one, sorted by name."""
    base = os.path.join(root, COMPONENTS_DIR)
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        if not entry.is_dir():
            continue
        # lstat, as os.path.lexists: a dangling or looping link is a component whose file
        # cannot be read, reported as such, not a folder silently left out of every plan
        try:
            found.append((entry.name, os.lstat(os.path.join(entry.path, COMPONENT_FILE))))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda pair: pair[0])
