"""Planning a build: which components, their input hashes, and whether the registry
already has each image. What `mlops build` does before it builds anything, shared by
a whole build, a dry run, a fan-out plan, one shard and a merge.

Reads tracked files through git (never the build context, unless the plan is to
be carried out) and asks the registry, or for a dry run the local cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from mlops import components as comps
from mlops import config as cfg
from mlops import links
from mlops.adapters import gitops
from mlops.buildcontext import ContextFile
from mlops.buildoptions import BuildOptions
from mlops.cache import DIGEST_CACHE, PARSE_CACHE, DigestCache, ParseCache
from mlops.context import Context
from mlops.errors import ConfigError, RegistryError, UsageError
from mlops.inputs import effective_build_args, ih_tag, input_hash
from mlops.plan import FROM_LOCAL_CACHE, PlannedComponent, decide, image_repository, tags_for
from mlops.records import dataclass
from mlops.services.registries import Lookup, RegistryAccess
from mlops.threadmap import thread_map
from mlops.tracked import FileIndex

LOOKUP_THREADS = 8


@dataclass(frozen=True)
class Planned:
    config: cfg.MlopsConfig
    head: str | None
    specs: tuple[comps.ComponentSpec, ...]
    plan: list[PlannedComponent]
    access: RegistryAccess
    cache: DigestCache
    index: FileIndex


def make_plan(ctx: Context, opts: BuildOptions, tree: gitops.GitTree | None = None,
              folders: Sequence[str] | None = None) -> Planned:
    """The plan for `opts.components` (all when empty): hashed, looked up, decided.
    `tree` and `folders`: git's listing of `components/` and the component folders
    found there, when the caller has read them already (mlops.services.planmemo)."""
    git_dir = gitops.git_dir(ctx.root)
    parse_cache = ParseCache(git_dir / PARSE_CACHE)
    config = cfg.load_config(ctx.root, ctx.environ, parse_cache)
    state, index, specs = _load_specs(ctx.root, parse_cache, tree, folders)
    specs = _select(specs, opts.components)
    _check_tracked(specs, index)
    _refuse_submodules(specs, index)
    _check_declared_paths(ctx.root, specs, index)
    state, index, from_worktree = _resolve_links(ctx.root, state, index, specs)
    if opts.changed_since:
        specs = _changed_only(ctx.root, specs, opts.changed_since)
    cache = DigestCache(git_dir / DIGEST_CACHE)
    access = RegistryAccess(config.registry)
    plan = _plan(config, specs, state, index, opts, access, cache, from_worktree)
    return Planned(config, state.head, tuple(specs), plan, access, cache, index)


def _load_specs(root: Path, parse_cache: ParseCache, tree: gitops.GitTree | None = None,
                folders: Sequence[str] | None = None):
    """Tracked files, their index and the component specs, reading as little as possible."""
    state = gitops.tree_state(root, [comps.COMPONENTS_DIR], tree)
    index = FileIndex(state.files, presorted=True)
    specs = comps.load_components(root, parse_cache, index, folders)
    parse_cache.save()
    extra = _outside_components(specs)
    if extra:
        more = gitops.tree_state(root, extra)
        state = gitops.TreeState(
            files=tuple(sorted(set(state.files) | set(more.files))),
            dirty=state.dirty | more.dirty,
            head=state.head,
        )
        index = FileIndex(state.files)
    return state, index, specs


def check_inputs(root: Path, specs: Sequence[comps.ComponentSpec]) -> None:
    """What a plan refuses about the components' inputs before it hashes them (an
    untracked Dockerfile, a declared path or a link that leaves the repository), for
    `mlops validate`: no plan, no registry."""
    state = gitops.tree_state(root, [comps.COMPONENTS_DIR, *_outside_components(specs)])
    index = FileIndex(state.files)
    _check_tracked(specs, index)
    _check_declared_paths(root, specs, index)
    _resolve_links(root, state, index, specs)


def _outside_components(specs: Sequence[comps.ComponentSpec]) -> list[str]:
    inside = comps.COMPONENTS_DIR + "/"
    return sorted({p for s in specs for p in s.input_paths if not p.startswith(inside)})


def _check_tracked(specs: Sequence[comps.ComponentSpec], index: FileIndex) -> None:
    """Builds use tracked files only, so an untracked Dockerfile would vanish from the context."""
    for spec in specs:
        if index.get(spec.dockerfile) is None:
            raise ConfigError(
                f"{spec.dockerfile} is not tracked by git; `git add` it "
                "(mlops builds from tracked files only)"
            )


def _refuse_submodules(specs: Sequence[comps.ComponentSpec], index: FileIndex) -> None:
    """A submodule is a commit id to git and a folder to Docker: its content would reach an
    image without being hashed, so it is refused before anything is planned."""
    if not _any_mode(index, gitops.GITLINK):
        return
    for spec in specs:
        found = [f.path for f in index.under(spec.input_paths) if f.mode == gitops.GITLINK]
        if found:
            raise ConfigError(f"{found[0]} is a git submodule inside component {spec.name}'s "
                              "inputs; mlops builds from files git tracks in this repository: "
                              "vendor its files or install it in the Dockerfile")


def _any_mode(index: FileIndex, mode: str) -> bool:
    """Whether any tracked file has this mode: most repositories have no submodule or link,
    and one pass over the index then spares a lookup per component."""
    return any(f.mode == mode for f in index.files)


def _check_declared_paths(root: Path, specs, index: FileIndex) -> None:
    """A declared path that git does not list but the work tree reaches through a symlink
    would feed the hash nothing while Docker saw something: refuse it, naming the path."""
    top = os.path.realpath(root)
    for spec in specs:
        for path in (spec.dockerfile, spec.context, *spec.depends_on):
            if index.get(path) is not None or index.has_dir(path):
                continue  # git lists it: a tracked link is resolved by mlops.links
            real = os.path.realpath(root / path)
            if real == os.path.join(top, path):
                continue  # plainly missing or empty: the existing checks speak for it
            if os.path.commonpath([top, real]) != top:
                raise ConfigError(f"{path} leads through a symlink to {real}, outside the "
                                  "repository; mlops builds only what git tracks inside it")
            raise ConfigError(f"{path} leads through a symlink; name the path it points to "
                              f"({os.path.relpath(real, top)})")


def _resolve_links(root: Path, state, index: FileIndex, specs):
    """Each symlink among the chosen components' inputs replaced by its target's content
    (mlops.links), and which paths' bytes come from the work tree (the hash read them there)."""
    from_worktree = {f.path: f.path for f in state.files if f.path in state.dirty}
    found = [f for f in index.under(_all_input_paths(specs)) if links.is_link(f)] \
        if _any_mode(index, links.LINK_MODE) else []
    if not found:
        return state, index, from_worktree
    whole = gitops.tree_state(root, [])  # a target may lie anywhere in the repository
    repo = FileIndex(whole.files, presorted=True)
    texts = gitops.link_texts(root, [f for f in whole.files if links.is_link(f)], whole.dirty)
    resolved = links.resolve(found, repo, texts)
    gone = {f.path for f in found}
    files = sorted([f for f in whole.files if f.path not in gone] + resolved.files)
    via = {at: src for at, src in resolved.sources.items() if src in whole.dirty}
    dirty = whole.dirty | via.keys()
    from_worktree = {**{f.path: f.path for f in whole.files if f.path in whole.dirty}, **via}
    index = FileIndex(files, presorted=True)
    for spec in specs:
        if index.get(spec.dockerfile) is None:
            raise ConfigError(f"{spec.dockerfile} is a symlink to a folder, not a Dockerfile")
    return gitops.TreeState(tuple(files), frozenset(dirty), whole.head), index, from_worktree


def _select(specs: list[comps.ComponentSpec], wanted: Sequence[str]) -> list[comps.ComponentSpec]:
    if not wanted:
        return specs
    by_name = {s.name: s for s in specs}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise UsageError(f"unknown component {unknown[0]!r} (known: {known})")
    return [by_name[w] for w in dict.fromkeys(wanted)]


def _changed_only(root: Path, specs: list[comps.ComponentSpec], ref: str) -> list:
    changed = gitops.changed_since(root, ref, [cfg.CONFIG_FILE, *_all_input_paths(specs)])
    if cfg.CONFIG_FILE in changed:
        return specs  # global build args may have changed: everything is suspect
    return [s for s in specs if any(_touches(p, s.input_paths) for p in changed)]


def _touches(path: str, roots: Sequence[str]) -> bool:
    return any(r == "." or path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _all_input_paths(specs: Sequence[comps.ComponentSpec]) -> list[str]:
    return list(dict.fromkeys(p for s in specs for p in s.input_paths))


def _plan(config, specs, state, index, opts, access, cache,
          from_worktree) -> list[PlannedComponent]:
    context = from_worktree if opts.sends_context else None
    hashed = [_hash_one(config, spec, state, index, opts.build_args, context) for spec in specs]
    lookups = _lookup_existing(hashed, access, cache, opts)
    return [_planned(h, lookups[h.spec.name], state, opts) for h in hashed]


class _Hashed(NamedTuple):
    """One component's inputs, hashed (a tuple: a plan makes one per component)."""

    spec: comps.ComponentSpec
    image: str
    input_hash: str
    build_args: Mapping[str, str]
    dirty: bool
    context_files: tuple[ContextFile, ...]


def _hash_one(config, spec, state, index: FileIndex, overrides, from_worktree) -> _Hashed:
    """`from_worktree` None: no build context (for a plan that builds nothing)."""
    files = index.under(spec.input_paths)
    args = effective_build_args(spec, config.build, overrides)
    dirty = bool(state.dirty) and any(_touches(p, spec.input_paths) for p in state.dirty)
    image = image_repository(config.registry, spec.name)
    context = () if from_worktree is None else _context_files(spec, files, index, from_worktree)
    return _Hashed(spec, image, input_hash(spec, files, args), args, dirty, context)


def _context_files(spec, files, index: FileIndex, from_worktree) -> tuple[ContextFile, ...]:
    """The context's entries (and an outside Dockerfile's), each with where its bytes are:
    git's blob, or the work-tree path the hash read it from."""
    chosen = files if spec.input_paths == (spec.context,) else index.under([spec.context])
    dockerfile = index.get(spec.dockerfile)
    if dockerfile is not None and dockerfile not in chosen:
        chosen = [*chosen, dockerfile]
    return tuple(ContextFile(f.path, f.mode, f.blob, from_worktree.get(f.path)) for f in chosen)


def _planned(h: _Hashed, found: Lookup, state, opts: BuildOptions) -> PlannedComponent:
    action, reason = decide(
        h.spec, h.input_hash, found.digest, found.source, opts.force, found.error
    )
    return PlannedComponent(
        spec=h.spec,
        image=h.image,
        input_hash=h.input_hash,
        build_args=h.build_args,
        action=action,
        reason=reason,
        tags=tags_for(h.spec, h.input_hash, state.head, h.dirty),
        existing_digest=found.digest,
        dirty=h.dirty,
        blocked=found.error if (found.error and _strict(opts)) else None,
        context_files=h.context_files,
    )


def _lookup_existing(hashed: list[_Hashed], access, cache, opts: BuildOptions) -> dict:
    """Per component, what the registry (or, for a dry run, the cache) has for its ih- tag."""
    results: dict[str, Lookup] = {}
    missing = []
    for h in hashed:
        cached = cache.digest(h.image, ih_tag(h.input_hash)) if opts.from_cache else None
        if cached or opts.force:
            results[h.spec.name] = Lookup(cached, FROM_LOCAL_CACHE)
        else:
            missing.append(h)
    if missing:  # a plan answered from the cache starts no threads
        found = thread_map(lambda h: access.lookup(h.image, ih_tag(h.input_hash)), missing,
                           workers=LOOKUP_THREADS)
        results.update({h.spec.name: f for h, f in zip(missing, found, strict=True)})
    for h in hashed:
        if results[h.spec.name].digest:
            cache.remember(h.image, ih_tag(h.input_hash), results[h.spec.name].digest)
    return results


def _strict(opts: BuildOptions) -> bool:
    """A failed lookup blocks the component whenever images are pushed: a build cannot push
    to a registry it cannot reach, and a dry run or fan-out plan of a pushing build would
    otherwise present a guess (rebuild everything) as the registry's answer. Only a
    `--no-push` build, which rebuilds locally anyway, goes on without it."""
    return opts.push


def refuse_blocked_plan(plan: Sequence[PlannedComponent]) -> None:
    """A dry run or fan-out plan that could not ask the registry about a component has
    no answer to give: exit 1, naming it, rather than a plan built on the failure."""
    blocked = [p for p in plan if p.blocked]
    if blocked:
        first = blocked[0]
        raise RegistryError(f"registry lookup for {first.name} failed ({first.blocked}); "
                            f"the plan needs the registry's answer ({len(blocked)} of "
                            f"{len(plan)} components unanswered)")
