"""Carrying out a build plan: build, test, push, read the digest back, in parallel.

Each component ends as an `Outcome`; one component's failure never stops the
others. The docker SDK is imported lazily: it costs ~0.2 s, and a dry run or a
plan where everything is reused must not pay for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlops.buildcontext import make_context
from mlops.errors import MlopsError, RegistryError
from mlops.inputs import ih_tag
from mlops.names import split_image
from mlops.plan import BUILD, PlannedComponent
from mlops.records import dataclass, replace
from mlops.services.registries import RegistryAccess
from mlops.ui import Reporter

if TYPE_CHECKING:
    from mlops.context import Context


@dataclass
class Outcome:
    item: PlannedComponent
    status: str  # built | reused | failed
    digest: str | None = None
    pushed: bool = False
    error: str | None = None
    provenance: dict[str, str] | None = None  # builder, att tag, attestation manifest digest
    seconds: float | None = None  # how long the build, test and push took (weighs fan-out shards)

    def as_record(self) -> dict:
        record: dict[str, Any] = {
            "component": self.item.name,
            "version": self.item.spec.version,
            "image": self.item.image,
            "tags": list(self.item.tags) if self.status != "failed" else [],
            "digest": self.digest,
            "input_hash": self.item.input_hash,
            "built": self.status == "built",
            "pushed": self.pushed,
            "status": self.status,
        }
        if self.seconds is not None:
            record["seconds"] = round(self.seconds, 3)
        if self.error:
            record["error"] = self.error
        if self.provenance:
            record["provenance"] = dict(self.provenance)
        return record

    def summary_line(self, width: int) -> str:
        ref = f"{self.item.image}@{self.digest}" if self.digest else self.item.image
        detail = self.error if self.status == "failed" else ref
        return f"{self.status:<7} {self.item.name:<{width}}  {detail}"


def run_plan(
    ctx: Context,
    plan: Sequence[PlannedComponent],
    access: RegistryAccess,
    push: bool,
    jobs: int,
) -> list[Outcome]:
    reporter = Reporter(ctx.out.stderr, verbose=ctx.verbose)
    reporter.start([p.name for p in plan])
    worker = _Worker(ctx, access, reporter, push)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(worker.run, plan))
    reporter.finish()
    return outcomes


class _Worker:
    def __init__(self, ctx: Context, access: RegistryAccess, reporter: Reporter, push: bool):
        self.ctx = ctx
        self.access = access
        self.reporter = reporter
        self.push = push

    def run(self, item: PlannedComponent) -> Outcome:
        try:
            if item.blocked:
                raise RegistryError(item.blocked)
            outcome = self._build(item) if item.action == BUILD else self._reuse(item)
        except MlopsError as exc:
            outcome = Outcome(item, "failed", error=str(exc))
            self.reporter.status(item.name, f"failed: {exc}")
            self.reporter.show_log_tail(item.name)
            return outcome
        self.reporter.status(item.name, outcome.status)
        return outcome

    def _reuse(self, item: PlannedComponent) -> Outcome:
        if self.push:
            self.reporter.status(item.name, "tagging in registry")
            repository = split_image(item.image)[1]
            wanted = [t for t in item.tags if t != ih_tag(item.input_hash)]
            self.access.client.tag(repository, ih_tag(item.input_hash), wanted)
        return Outcome(item, "reused", digest=item.existing_digest)

    def _build(self, item: PlannedComponent) -> Outcome:
        started = time.monotonic()
        outcome = self._build_test_push(item)
        return replace(outcome, seconds=time.monotonic() - started)

    def _build_test_push(self, item: PlannedComponent) -> Outcome:
        from mlops.adapters.builder import Engine

        engine = Engine(log=lambda line: self.reporter.log(item.name, line))
        image_id = self._docker_build(engine, item)
        self._test(engine, item, image_id)
        for tag in item.tags:
            engine.tag(image_id, item.image, tag)
        if not self.push:
            return Outcome(item, "built")
        return Outcome(item, "built", digest=self._push(engine, item), pushed=True)

    def _docker_build(self, engine, item: PlannedComponent) -> str:
        self.reporter.status(item.name, "building")
        tar, dockerfile = make_context(
            self.ctx.root, item.spec.context, item.spec.dockerfile, item.context_files
        )
        with tar:
            return engine.build(
                tar,
                dockerfile,
                f"{item.image}:{ih_tag(item.input_hash)}",
                item.build_args,
                lambda line: self.reporter.log(item.name, line),
                labels=item.labels,
            )

    def _test(self, engine, item: PlannedComponent, image_id: str) -> None:
        if not item.spec.test:
            return
        from mlops.errors import BuildError

        self.reporter.status(item.name, "testing")
        code = engine.run_test(
            image_id, item.spec.test, lambda line: self.reporter.log(item.name, line)
        )
        if code != 0:
            raise BuildError(f"test command exited {code}; not pushed")

    def _push(self, engine, item: PlannedComponent) -> str:
        from mlops.adapters.builder import PushError
        from mlops.adapters.retry import with_retries

        tag = ih_tag(item.input_hash)
        self.reporter.status(item.name, "pushing")
        with_retries(
            lambda: engine.push(item.image, tag, lambda line: self.reporter.log(item.name, line)),
            lambda exc: isinstance(exc, PushError) and exc.transient,
            attempts=self.access.client.policy.attempts,  # $MLOPS_REGISTRY_RETRIES
            initial=0.5,
            on_retry=lambda n, exc: self.reporter.log(item.name, f"retrying push: {exc}"),
        )
        repository = split_image(item.image)[1]
        digest = self.access.client.manifest_digest(repository, tag)
        if not digest:
            raise RegistryError(f"pushed {item.image}:{tag} but the registry does not serve it")
        self.access.client.tag(repository, tag, [t for t in item.tags if t != tag])
        return digest
