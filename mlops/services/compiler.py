"""Compiling an environment's pipelines: Pipeline + PipelineVersion manifests, cached.

Every pipeline is compiled first, each file imported in a child process under
a timeout (`mlops.adapters.compile_child`); files are written only when all of them
compiled, so a bad pipeline leaves the overlay untouched. An
unchanged pipeline (same sources, same images) is not recompiled at all.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops import __version__, overlay
from mlops import config as cfg
from mlops import pipelines as pl
from mlops.adapters import compile_child, kfpc
from mlops.atomicfile import write_text_atomic
from mlops.buildrecord import read_build_record
from mlops.cache import JsonCache
from mlops.errors import ConfigError, UsageError
from mlops.records import dataclass, field
from mlops.services import checkout, scheduling
from mlops.services.envdir import EnvDir

COMPILE_CACHE = "mlops/compile-cache.json"


@dataclass(frozen=True)
class PipelineSource:
    name: str
    path: Path
    display: str


@dataclass
class Compiled:
    source: PipelineSource
    output: str  # repo-relative path of the manifest
    status: str  # compiled | unchanged
    version: str
    text: str
    components: tuple[str, ...] = ()
    images: dict[str, str] = field(default_factory=dict)


def compile_environment(
    root: Path,
    env: cfg.Environment,
    images: Mapping[str, str],
    cache: JsonCache,
    wanted: Sequence[str] = (),
    force: bool = False,
) -> list[Compiled]:
    """Compile (or find unchanged) every pipeline for `env`, in memory."""
    sources = discover(root, wanted)
    if not sources:  # nothing to compile: no need to ask which kfp is installed
        return []
    source_digest = _sources_digest(root)
    known = set(checkout.component_folders(root))
    return [
        _compile_one(root, env, s, images, known, cache, source_digest, force) for s in sources
    ]


def resolve_images(root: Path, env: str, build: Path | None, overlay_text: str) -> dict:
    """Component -> image reference, from a build record or the environment's pins."""
    if build is not None:
        record = read_build_record(build)
        return pl.images_from_entries(record.builds, record.path)
    display = overlay.display_path(env)
    pins = overlay.image_pins(overlay.parse(overlay_text, display), display)
    return {
        name: pl.image_ref(pin.new_name or name, pin.digest, pin.new_tag)
        for name, pin in pins.items()
    }


def discover(root: Path, wanted: Sequence[str]) -> list[PipelineSource]:
    folder = root / pl.PIPELINES_DIR
    found = {
        p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_") and p.is_file()
    }
    names = list(dict.fromkeys(wanted)) or sorted(found)
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(sorted(found)) or "none"
        raise UsageError(f"unknown pipeline {missing[0]!r} (known: {known})")
    sources = []
    for stem in names:
        display = f"{pl.PIPELINES_DIR}/{found[stem].name}"
        sources.append(PipelineSource(pl.resource_name(stem, display), found[stem], display))
    _refuse_same_names(root, found)
    return sources


def _refuse_same_names(root: Path, found: dict[str, Path]) -> None:
    """Two files whose names become one Kubernetes name (`my_train.py`, `my-train.py`)
    would write one manifest, the last compiled winning: refused, whichever is asked for."""
    seen: dict[str, str] = {}
    for stem, path in sorted(found.items()):
        display = f"{pl.PIPELINES_DIR}/{path.name}"
        name = stem.replace("_", "-")  # as pl.resource_name makes it (and checks it, if asked)
        other = seen.setdefault(name, display)
        if other != display:
            raise ConfigError(f"{other} and {display} both compile to the pipeline {name!r}; "
                              "rename one")


def _sources_digest(root: Path) -> str:
    """Everything under pipelines/ that a pipeline module could import, plus what names it.

    The kfp version is in the manifest (`sdkVersion`) and so in the version name;
    the naming rule decides the name. Either changing must miss the cache.
    """
    files = [
        (str(p.relative_to(root)), p.read_bytes())
        for p in sorted((root / pl.PIPELINES_DIR).rglob("*.py"))
        if p.is_file()
    ]
    return pl.source_hash(files, [__version__, kfpc.sdk_version(), pl.NAMING_RULE])


def output_path(env: str, name: str) -> str:
    return EnvDir(Path(), env).pipeline_output(name)


def _compile_one(root, env, source, images, known, cache, source_digest, force) -> Compiled:
    output = output_path(env.name, source.name)
    hit = None if force else _cache_hit(root / output, cache, output, source_digest, images)
    if hit is not None:
        return hit_result(source, output, hit)
    docs, components = compile_child.compile_file(
        source.path, source.display, source.name, pl.PLACEHOLDER_VERSION, images, sorted(known),
        env.name, compile_child.timeout_from(os.environ))
    version = pl.name_version(docs, source.name)
    pl.check_images(docs, source.display, env.name, env.require_digest)
    text = pl.render(docs, source.display)
    used = {c: images[c] for c in components}
    cache.put(
        output,
        {
            "source": source_digest,
            "components": list(components),
            "input": pl.input_hash(source_digest, images, components),
            "output": _sha(text),
            "version": version,
        },
    )
    return Compiled(source, output, "compiled", version, text, components, used)


def _cache_hit(path: Path, cache, output, source_digest, images) -> dict | None:
    entry = cache.get(output)
    if not isinstance(entry, dict) or entry.get("source") != source_digest:
        return None
    components = entry.get("components") or []
    if entry.get("input") != pl.input_hash(source_digest, images, components):
        return None
    try:
        current = path.read_text()
    except OSError:
        return None
    return entry if _sha(current) == entry.get("output") else None


def hit_result(source: PipelineSource, output: str, entry: dict) -> Compiled:
    return Compiled(source, output, "unchanged", entry["version"], "", tuple(entry["components"]))


def schedule_plan(root: Path, env: cfg.Environment, results: list[Compiled]):
    """The environment's schedules rendered against `results` (and the pipelines already
    compiled into it), checked; nothing written (`mlops.services.scheduling`)."""
    known = {s.path.stem: s.name for s in discover(root, ())} if env.schedules else {}
    compiled = {r.source.name: r.text for r in results if r.status == "compiled"}
    return scheduling.plan(root, env, known, compiled)


def write_results(root: Path, env: cfg.Environment, results: list[Compiled], overlay_text: str,
                  schedules: scheduling.SchedulePlan | None = None) -> str:
    """Write compiled manifests and the environment's schedules and list them in the
    overlay; return the overlay's text."""
    if schedules is None:
        schedules = schedule_plan(root, env, results)  # checked before anything is written
    _refuse_unwritable(root, results)
    text = overlay_text
    display = overlay.display_path(env.name)
    for r in results:  # the overlay edit first: a broken overlay must leave no manifest behind
        text = overlay.add_resource(text, f"{pl.PIPELINES_DIR}/{r.source.name}.yaml", display)
    if schedules.kustomization is not None:
        text = overlay.add_resource(text, schedules.resource, display)
    for r in results:
        if r.status == "compiled":
            write_text_atomic(root / r.output, r.text)
    scheduling.write(root, schedules)
    scheduling.write_kustomization(root, env.name, schedules)
    if text != overlay_text:
        write_text_atomic(overlay.kustomization_path(root, env.name), text)
    return text


def _refuse_unwritable(root: Path, results: list[Compiled]) -> None:
    """Every manifest's place holds a file or nothing, checked before the first is written:
    a folder (or a device, a FIFO) at the last one's place left the others written."""
    for r in results:
        target = root / r.output
        if r.status == "compiled" and os.path.lexists(target) \
                and not stat.S_ISREG(os.lstat(target).st_mode):
            raise ConfigError(f"{r.output} is not a file (a folder, a device or a FIFO); "
                              "compile writes the pipeline's manifest there: move it away")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
