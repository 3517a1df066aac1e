"""What every command (and the services it calls) gets from the CLI: where the repo is
and how to talk."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlops.output import Output
from mlops.records import dataclass, field


@dataclass
class Context:
    root: Path
    out: Output
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
