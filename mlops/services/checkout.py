"""What a checkout holds, also in a workspace, which leaves component folders out.

A workspace (`adapters.gitops.workspace`) is a sparse checkout without
`components/<name>/`: nothing there reads a component's files, and at 1,000
components creating and removing their folders was a third of a promotion.
Its index still says which folders hold a component.yaml.
"""

from __future__ import annotations

from pathlib import Path

from mlops import components as comps
from mlops.adapters import gitops


def component_folders(root: Path) -> list[str]:
    """`components.component_folders`: read from the work tree, and in a sparse checkout
    also from the index (a folder that holds a tracked component.yaml)."""
    found = comps.component_folders(root)
    if not gitops.sparse_checkout(root):
        return found
    tracked = gitops.tracked_folders_with(root, comps.COMPONENTS_DIR, comps.COMPONENT_FILE)
    return sorted({*found, *tracked})
