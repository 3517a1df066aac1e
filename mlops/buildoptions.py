"""What `mlops build` was asked to do: the command line, as one record.

Apart from the planning service, so that a dry run answered from the memo
(mlops.services.planmemo) loads nothing of the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops.records import dataclass, field


@dataclass(frozen=True)
class BuildOptions:
    components: tuple[str, ...] = ()
    dry_run: bool = False
    push: bool = True
    changed_since: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    output: Path | None = None
    jobs: int | None = None
    force: bool = False
    sign_key: Path | None = None  # else $MLOPS_SIGNING_KEY: sign and attach provenance
    builder: str | None = None  # else $MLOPS_BUILDER: the key's principal
    plan: bool = False  # fan-out: write the shards' plan, build nothing
    shards: int | None = None  # --shards given (with --plan); None: one shard
    timings: Path | None = None  # a past build record whose build times weigh the shards
    plan_file: Path | None = None  # fan-out: the plan a --shard or --merge carries out
    shard: int | None = None
    merge: tuple[Path, ...] | None = None  # fan-out: the shards' partial records

    @property
    def sends_context(self) -> bool:
        """Whether the plan is carried out here (a dry run or a fan-out plan builds nothing)."""
        return not (self.dry_run or self.plan)

    @property
    def from_cache(self) -> bool:
        """A dry run may answer from the local cache; anything another job relies on asks
        the registry."""
        return self.dry_run
