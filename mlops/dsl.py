"""What pipeline files import from mlops: component images without hard-coding them.

    from mlops.dsl import component_image

    @dsl.container_component
    def train(...):
        return dsl.ContainerSpec(image=component_image("train"), ...)

`mlops compile` and `mlops run` resolve each name to the digest pinned for the
environment (or from a build record) while the pipeline module is imported.
Imported on its own, a pipeline gets the bare component name, which no
digest-only environment accepts. Pure: no kfp, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from mlops.names import component_name_problem

Resolver = Callable[[str], str]

_resolver: ContextVar[Resolver | None] = ContextVar("mlops_image_resolver", default=None)


class UnknownComponentError(LookupError):
    """A pipeline asked for a component that the repository does not have."""


def component_image(name: str) -> str:
    """The image reference for component `name` in the environment being compiled."""
    problem = component_name_problem(name)
    if problem:
        raise UnknownComponentError(f"component name {problem}")
    resolve = _resolver.get()
    return resolve(name) if resolve else name


@contextmanager
def resolving(resolver: Resolver) -> Iterator[None]:
    token = _resolver.set(resolver)
    try:
        yield
    finally:
        _resolver.reset(token)
