"""Where a repository keeps its components: one folder each under `components/`,
named by its `component.yaml`.

Apart from `components`, which reads and checks the specs, so that a dry run
answered from the memo (mlops.services.planmemo) can look for components
without loading YAML or the schema.
"""

from __future__ import annotations

import os
from pathlib import Path

COMPONENTS_DIR = "components"
COMPONENT_FILE = "component.yaml"


def component_folders(root: Path) -> list[str]:
    """Names of the folders under components/ that hold a component.yaml."""
    base = os.path.join(root, COMPONENTS_DIR)
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        e.name
        for e in entries
        # lexists: a dangling or looping link is a component whose file cannot be read,
        # reported as such, not a folder silently left out of every plan
        if e.is_dir() and os.path.lexists(os.path.join(e.path, COMPONENT_FILE))
    )
