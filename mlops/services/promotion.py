"""The steps of one promotion attempt, each small and named for what it checks or writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops import config as cfg
from mlops import imagecheck, overlay, trustroot, validation
from mlops import release as rel
from mlops.adapters import kustomize
from mlops.adapters.gitops.workspace import Workspace
from mlops.atomicfile import write_text_atomic
from mlops.buildrecord import BuildRecord
from mlops.cache import JsonCache
from mlops.core import gates as gate_logic
from mlops.core.promotion import Source
from mlops.errors import ApprovalError, ConfigError
from mlops.names import COMMIT, DIGEST, image_problem
from mlops.records import replace
from mlops.services import checkout
from mlops.services.compiler import compile_environment, discover, write_results
from mlops.services.envdir import EnvDir
from mlops.services.envhistory import entered_at
from mlops.services.registries import Registries
from mlops.services.serving import enable_automated_sync, write_serving_patch
from mlops.threadmap import thread_map


class Background:
    """One piece of work running while the caller goes on; `wait()` raises what it raised.

    A promotion asks the registry about every image of the build record (hundreds
    of round trips) while it compiles, edits and renders the overlay, which needs
    only the record's names and digests; `kubectl kustomize` renders the overlay
    while the gates, the approval and the trust root are checked. Nothing is
    committed before `wait()`.
    """

    def __init__(self, name: str = "work") -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # re-raised in the caller's thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"mlops-{self.name}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def wait_quietly(self) -> None:
        """Join, dropping what it raised: the caller has a graver error to report, and the
        work must not go on past it (a render in a workspace about to be removed)."""
        try:
            self.wait()
        except BaseException:  # noqa: BLE001, S110  the caller's error is the one reported
            pass


def compose_release(root, config, source: Source, build, metrics, model_uri,
                    registries: Registries | None = None,
                    checking: Background | None = None) -> rel.Release:
    """The release that enters: the build record's, or the source environment's, with the
    evidence (metrics, model URI) this promotion attaches. With `checking`, the build
    record's registry checks run there: the caller must `wait()` before trusting it."""
    if build is not None:
        release = _release_from_build(root, config.registry, build, registries or Registries(),
                                      checking)
    else:
        found = EnvDir(root, str(source)).read_record()
        if found is None:
            raise ConfigError(f"environment {source} has no release to promote yet")
        _check_source_runs_it(root, str(source), found)
        release = found.release
    return with_evidence(release, metrics, model_uri)


def _check_source_runs_it(root: Path, source: str, record: rel.EnvRecord) -> None:
    """The source overlay must pin what its release.yaml says: else the release never ran there."""
    display = overlay.display_path(source)
    pins = overlay.image_pins(overlay.parse(overlay.read_text(root, source), display), display)
    found = validation.release_disagreements(record, pins, record.release.pipelines)
    if found:
        raise ConfigError(f"{EnvDir(root, source).record_display}: {found[0]}; "
                          f"{source} does not run the release it records (`mlops validate`)")


def _release_from_build(root: Path, registry: str, build: BuildRecord,
                        registries: Registries, checking: Background | None) -> rel.Release:
    """The release a build record describes, once every entry is bound to this project.

    What the file alone shows is checked first (no network); then each image
    must be the configured `<registry>/<component>`, serving its digest under
    its `ih-` tag (`imagecheck`).
    """
    path = build.path
    entries = _entries_by_component(root, path, build)
    commit = build.source_commit
    if not isinstance(commit, str) or not COMMIT.match(commit):
        raise ConfigError(f"{path}: source_commit {commit!r} is not a commit id; "
                          "a release records the commit it was built from")
    def check() -> None:
        imagecheck.check_record_entries(registry, path, entries, registries.served)

    if checking is None:
        check()
    else:
        checking.start(check)
    images = {name: rel.Image(str(e["image"]), str(e["digest"])) for name, e in entries.items()}
    return rel.Release(source_commit=commit, images=images)


def _entries_by_component(root: Path, path: str, build: BuildRecord) -> dict[str, Mapping]:
    """Component -> its well-formed build entry; one per component folder, no strays."""
    entries = {b.get("component"): b for b in build.entries()}
    folders = checkout.component_folders(root)
    strays = sorted(str(n) for n in entries if n not in folders)
    if strays:  # a record of another tree: its release would not be this one's
        raise ConfigError(f"{path}: builds component {strays[0]!r}, which components/ "
                          "does not have; is the build record from another commit?")
    found = {}
    for name in folders:
        entry = entries.get(name)
        if entry is None:
            raise ConfigError(f"{path}: no build of component {name!r}")
        digest = entry.get("digest")
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise ConfigError(
                f"{path}: component {name!r} has no digest (tags {entry.get('tags')}); "
                "releases pin images by digest: build with push"
            )
        problem = image_problem(entry.get("image"))
        if problem:  # it goes into the kustomization and the registry check as is
            raise ConfigError(f"{path}: component {name!r}: image {problem}")
        found[name] = entry
    return found


def with_evidence(release: rel.Release, metrics, model_uri) -> rel.Release:
    """`release` with the evidence a promotion attaches; evidence it has already is fixed."""
    if metrics is not None:
        if release.metrics and dict(release.metrics) != metrics:
            raise ConfigError(
                f"release {release.id} already carries evaluation metrics; "
                "a release's evidence cannot change (build a new one)"
            )
        release = replace(release, metrics=metrics)
    if model_uri is not None:
        if release.model_uri and release.model_uri != model_uri:
            raise ConfigError(f"release {release.id} already has model URI {release.model_uri}")
        release = replace(release, model_uri=model_uri)
    return release


def write_overlay(root: Path, env: cfg.Environment, release: rel.Release, cache: JsonCache,
                  percent: int | None = None, rendering: Background | None = None):
    """Recompile pipelines, pin images, give the InferenceService the model (and split), and
    turn on the environment's automated sync in Argo CD (a no-op from the second release).

    With `rendering`, an overlay without a serving patch is rendered there: the caller
    must `wait()` before committing it."""
    EnvDir(root, env.name).refuse_links()  # before anything is written through one
    text = overlay.read_text(root, env.name)
    results = compile_environment(root, env, release.image_refs(), cache)
    text = write_results(root, env, results, text)
    versions = {r.source.name: r.version for r in results}
    if release.pipelines and dict(release.pipelines) != versions:
        raise ConfigError(
            f"recompiled pipelines {versions} differ from release {release.id}'s "
            f"{dict(release.pipelines)}; recompile it in the source environment"
        )
    release = replace(release, pipelines=versions)  # its id, as the serving patch names it
    pins = {n: (img.image, img.digest) for n, img in release.images.items()}
    new_text = overlay.set_images(text, pins, overlay.display_path(env.name))
    if new_text != text:
        write_text_atomic(overlay.kustomization_path(root, env.name), new_text)
    if write_serving_patch(root, env, release.model_uri, percent, release.id) is None:
        # what is committed must render: the serving patch renders it, else render it here
        where = EnvDir(root, env.name)
        if rendering is None:
            kustomize.render(where.path, where.where)
        else:
            rendering.start(lambda: kustomize.render(where.path, where.where))
    try:
        enable_automated_sync(root, env)  # pinned now: Argo CD may deploy it (argocd.py)
    except BaseException:
        if rendering is not None:
            rendering.wait()  # the render's error first, as when it ran before this
        raise
    return release


def release_id_if_known(root: Path, release: rel.Release) -> str | None:
    """The id `release` will have once `write_overlay` compiled its pipelines, when that
    is known before: its pipelines are pinned already (other versions are refused), or
    the branch has none to compile. Else None, and every approval is read."""
    if release.pipelines or not discover(root, ()):
        return release.id
    return None


def check_still_approved(release: rel.Release, approved: rel.Release | None) -> None:
    """After `write_overlay`: the release about to be committed is the one whose approval
    was checked. Recompiling gives a record that pinned no pipelines the branch's
    current ones, and with them another release (and id)."""
    if approved is not None and release.id != approved.id:
        raise ApprovalError(
            f"release {approved.id} was approved, but recompiling the branch's pipelines "
            f"for it made release {release.id} (its record pins no pipelines); approve "
            f"{release.id} to put it in place")


def write_record(root, env, release, source, gates, approver, hold=None, rollout=None) -> None:
    record = rel.EnvRecord(env, release, source, tuple(gates), approver, hold, rollout)
    EnvDir(root, env).write_record(record)


def evaluate_gates(ws, target, source: Source, release, current) -> list[dict[str, Any]]:
    """The target's metric gates (against its champion, `current`) and its soak time."""
    champion = current.release.metrics if current else None
    results = gate_logic.evaluate_metric_gates(
        target.gates, release.metrics, champion, current.release.id if current else None)
    if target.soak > 0 and source.env is not None:
        entered = entered_at(ws, source.env, release.id)
        results.append(gate_logic.soak_gate(target.soak, entered, time.time(), source.env))
    return [r.as_dict() for r in results]


def verify_provenance(ws: Workspace, config, release: rel.Release,
                      registries: Registries | None = None) -> list[dict] | None:
    """Each pinned digest's signed provenance, when the trust root lists builders (else None).

    A statement counts when a builder's key signed it, it names this image and
    digest, and the release's source commit (`mlops.attest.find_valid`); a
    missing or invalid one is exit 4, like a missing approval.
    """
    from mlops import attest

    root = trustroot.resolve(ws, config)
    if not root.state.builders:
        return None
    commit = release.source_commit
    if not commit:
        raise ApprovalError(f"release {release.id} names no source commit, so no build "
                            "provenance can vouch for it")
    signers = trustroot.signers_file(ws, trustroot.in_force(root, commits=False))
    client_for = (registries or Registries()).client

    def check(item: tuple[str, rel.Image]) -> dict:
        name, img = item
        found = attest.find_valid(client_for(img.image), img.image, img.digest, commit, signers,
                                  root.state.builders)
        return {"component": name, "digest": img.digest, "builder": found["signer"],
                "attestation": found["manifest"]}

    return thread_map(check, sorted(release.images.items()), workers=8)
