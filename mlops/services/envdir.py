"""The environment store: `environments/<env>/` and every file mlops keeps in it.

Each path an environment has is built here, once: the overlay
(`kustomization.yaml`), the release record (`release.yaml`), the serving patch
and the compiled pipelines. Reading and writing the overlay and the record go
through `EnvDir`, so a caller never spells a path by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops import config as cfg
from mlops import isvc, overlay
from mlops import pipelines as pl
from mlops import release as rel
from mlops.adapters import safeyaml
from mlops.atomicfile import write_text_atomic
from mlops.errors import ConfigError
from mlops.records import dataclass

ENVIRONMENTS_DIR = overlay.ENVIRONMENTS_DIR
SCHEDULES_DIR = "schedules"


environment = cfg.environment_arg  # commands name it here, beside the paths it owns


@dataclass(frozen=True)
class EnvDir:
    """One environment's folder under a checkout (`root`), by name."""

    root: Path
    name: str

    @property
    def where(self) -> str:
        """Repo-relative folder, as messages and git pathspecs spell it."""
        return f"{ENVIRONMENTS_DIR}/{self.name}"

    @property
    def path(self) -> Path:
        return self.root / self.where

    @property
    def kustomization(self) -> Path:
        return overlay.kustomization_path(self.root, self.name)

    @property
    def kustomization_display(self) -> str:
        return overlay.display_path(self.name)

    @property
    def record_display(self) -> str:
        return f"{self.where}/{rel.RELEASE_FILE}"

    @property
    def record_path(self) -> Path:
        return self.root / self.record_display

    @property
    def patch_path(self) -> Path:
        return self.path / isvc.PATCH_FILE

    @property
    def pipelines_where(self) -> str:
        return f"{self.where}/{pl.PIPELINES_DIR}"

    def pipeline_output(self, pipeline: str) -> str:
        """Repo-relative path of a compiled pipeline's manifest."""
        return f"{self.pipelines_where}/{pipeline}.yaml"

    @property
    def schedules_where(self) -> str:
        """The folder of the environment's ScheduledWorkflows (mlops writes all of it)."""
        return f"{self.where}/{SCHEDULES_DIR}"

    def schedule_output(self, name: str) -> str:
        """Repo-relative path of one schedule's ScheduledWorkflow."""
        return f"{self.schedules_where}/{name}.yaml"

    def read_overlay(self) -> str:
        return overlay.read_text(self.root, self.name)

    def write_overlay(self, text: str) -> None:
        write_text_atomic(self.kustomization, text)

    def has_record(self) -> bool:
        return self.record_path.is_file()

    def refuse_links(self) -> None:
        """Refuse a symbolic link at `environments/`, `environments/<env>` or anywhere in it.

        mlops writes an environment's files in place: through a link, a promotion into
        an ungated environment would write another one's overlay and record (a gated
        one's), or files outside the repository. Git cannot tell such a link from a
        folder in a diff's summary, so a push could slip one in.
        """
        top = self.root / ENVIRONMENTS_DIR
        for path in (top, self.path):
            if path.is_symlink():
                raise ConfigError(_link_message(path.relative_to(self.root).as_posix(),
                                                self.name))
        for folder, dirs, files in os.walk(self.path):
            for name in (*dirs, *files):
                if os.path.islink(os.path.join(folder, name)):
                    where = Path(folder, name).relative_to(self.root).as_posix()
                    raise ConfigError(_link_message(where, self.name))

    def read_record(self) -> rel.EnvRecord | None:
        """The release record, or None when the environment has had no release."""
        self.refuse_links()
        try:
            text = safeyaml.read_text(self.record_path, self.record_display)
        except FileNotFoundError:
            return None
        return self.parse_record(text, self.record_display)

    def parse_record(self, text: str, display: str) -> rel.EnvRecord:
        record = rel.parse(text, display)
        if record.environment != self.name:  # e.g. another environment's record copied here
            raise ConfigError(f"{display}: is the record of environment "
                              f"{record.environment!r}, not {self.name!r}")
        return record

    def write_record(self, record: rel.EnvRecord) -> None:
        self.refuse_links()
        write_text_atomic(self.record_path, rel.render(record))


def _link_message(where: str, env: str) -> str:
    return (f"{where}: is a symbolic link; mlops writes environment {env}'s files in place "
            f"and refuses links in {ENVIRONMENTS_DIR}/{env} (one could point at another "
            "environment or outside the repository): commit a real folder or file")
