"""One module per subcommand; each exposes a function that returns an exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops.output import Output


@dataclass
class Context:
    """What every command gets from the CLI: where the repo is and how to talk."""

    root: Path
    out: Output
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
