"""Records: the part of `dataclasses` mlops uses, at a fraction of its cost to define.

Why not `dataclasses` itself: on CPython 3.11 it compiles six functions for each
frozen class when the class is defined (about 0.6 ms a class on the benchmark
machine) and imports `inspect`, `ast`, `dis` and `tokenize` (about 4 ms). A
command defines 20 to 60 such classes before it does any work, most of which it
never instantiates: a no-op `mlops build --dry-run` spent a quarter of its time
there (issue 17, `benchmarks/README.md`). Here defining a class is a scan of its
annotations; its `__init__` is compiled the first time the class is called, and
equality, hashing, `repr` and immutability are shared functions that read the
class's field names.

What behaves as in `dataclasses` (tests/test_records.py runs both side by side):
fields from annotations, a base record's first; defaults, and
`field(default=, default_factory=, compare=, repr=)`; a non-default field after a
default one, or a mutable default, is refused when the class is defined;
`__post_init__`; `frozen=True` instances refuse assignment with
`FrozenInstanceError` (an AttributeError); methods a class defines itself
(`__eq__`, `__hash__`, `__repr__`, `__init__`) are kept; `replace` calls the
class, so `__post_init__` checks again; `asdict` recurses into records, lists,
tuples and dicts (it does not deep-copy other values). Type checkers read the
decorator as a dataclass transform, so constructor calls are checked.
Not supported (mlops does not use them): `order`, `kw_only`, `slots`,
`InitVar`, `init=False` fields, `fields()`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T", bound=type)
_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()
_FACTORY: Any = type("_Factory", (), {"__repr__": lambda self: "<factory>"})()
_MUTABLE = (list, dict, set)


class FrozenInstanceError(AttributeError):
    """An assignment to a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                 compare: bool = True, repr: bool = True) -> None:  # noqa: A002 (dataclasses' name)
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING or self.default_factory is not _MISSING


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING,
          compare: bool = True, repr: bool = True) -> Any:  # noqa: A002 (dataclasses' name)
    """A field's default, default factory, and whether equality and repr use it."""
    return Field(default, default_factory, compare, repr)


@overload
def dataclass(cls: _T, /) -> _T: ...
@overload
def dataclass(*, frozen: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(field_specifiers=(field, Field))
def dataclass(cls: Any = None, /, *, frozen: bool = False) -> Any:
    """`@dataclass` or `@dataclass(frozen=True)`, as the standard library's."""
    def wrap(cls: type) -> type:
        return _make_record(cls, frozen)
    return wrap if cls is None else wrap(cls)


def replace(obj: Any, /, **changes: Any) -> Any:
    """A copy of `obj` with `changes`, made by calling its class (so checks run again)."""
    fields = _fields_of(type(obj))
    unknown = sorted(changes.keys() - fields.keys())
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {unknown[0]!r}")
    kept = {name: getattr(obj, name) for name in fields if name not in changes}
    return type(obj)(**kept, **changes)


def asdict(obj: Any) -> dict[str, Any]:
    """The record's fields as a dict, records inside turned into dicts too."""
    if not _is_record(obj):
        raise TypeError("asdict() should be called on record instances")
    return _plain(obj)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if _is_record(value):
        return {name: _plain(getattr(value, name)) for name in _fields_of(type(value))}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple, as dataclasses
        return type(value)(*[_plain(v) for v in value])
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _is_record(obj: Any) -> bool:
    return not isinstance(obj, type) and hasattr(type(obj), "__record_fields__")


def _fields_of(cls: type) -> dict[str, Field]:
    return cls.__record_fields__  # type: ignore[attr-defined, no-any-return]


# -- defining a class -----------------------------------------------------------


def _make_record(cls: type, frozen: bool) -> type:
    fields = {**_inherited_fields(cls, frozen), **_own_fields(cls)}
    _check_order(cls, fields)
    compared = tuple(name for name, f in fields.items() if f.compare)
    attrs: dict[str, Any] = {
        "__record_fields__": fields,
        "__record_frozen__": frozen,
        "__record_key__": _key_of(compared),
        "__record_shown__": tuple(name for name, f in fields.items() if f.repr),
    }
    for name, value in attrs.items():
        setattr(cls, name, value)
    _set_new(cls, "__match_args__", tuple(fields))
    _set_new(cls, "__init__", _lazy_init(cls))
    _set_new(cls, "__repr__", _repr)
    _set_new(cls, "__eq__", _eq)
    _set_hash(cls, frozen)
    if frozen:
        for name, method in (("__setattr__", _frozen_setattr), ("__delattr__", _frozen_delattr)):
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            setattr(cls, name, method)
    return cls


def _inherited_fields(cls: type, frozen: bool) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        if "__record_fields__" in base.__dict__:
            if base.__dict__["__record_frozen__"] != frozen:
                kind = "frozen" if frozen else "non-frozen"
                raise TypeError(f"cannot inherit {kind} record {cls.__name__} from "
                                f"{'non-frozen' if frozen else 'frozen'} {base.__name__}")
            fields.update(base.__dict__["__record_fields__"])
    return fields


def _own_fields(cls: type) -> dict[str, Field]:
    fields = {}
    for name, kind in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(kind):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        if isinstance(spec.default, _MUTABLE):
            raise ValueError(f"mutable default {type(spec.default)} for field {name} "
                             "is not allowed: use default_factory")
        if isinstance(value, Field):  # the class attribute is the default, as in dataclasses
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        if not name.isidentifier() or name.startswith("_rec_"):  # `__init__` is made of them
            raise TypeError(f"{cls.__name__}: field name {name!r} is not an identifier, "
                            "or starts with the reserved '_rec_'")
        spec.name = name
        fields[name] = spec
    return fields


def _is_classvar(kind: object) -> bool:
    text = kind if isinstance(kind, str) else getattr(kind, "__qualname__", repr(kind))
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _check_order(cls: type, fields: dict[str, Field]) -> None:
    defaulted = False
    for name, spec in fields.items():
        if spec.has_default:
            defaulted = True
        elif defaulted:
            raise TypeError(f"non-default argument {name!r} follows default argument "
                            f"in {cls.__name__}")


def _set_new(cls: type, name: str, value: Any) -> None:
    if name not in cls.__dict__:  # what the class defines itself wins, as in dataclasses
        setattr(cls, name, value)


def _set_hash(cls: type, frozen: bool) -> None:
    own = cls.__dict__.get("__hash__", _MISSING)
    explicit = not (own is _MISSING or (own is None and "__eq__" in cls.__dict__))
    if explicit:
        return
    # dataclasses' rule: frozen records hash their compared fields; mutable ones have no hash
    cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]


# -- shared methods ---------------------------------------------------------------


def _key_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The compared fields as a tuple, as dataclasses compares them: a tuple's `==` takes
    an element that `is` the other's as equal, so a NaN field equals itself."""
    if len(names) > 1:
        return attrgetter(*names)  # a tuple already
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return _no_key


def _no_key(obj: object) -> tuple[()]:
    return ()


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = type(self).__record_key__
    return key(self) == key(other)


def _hash(self: Any) -> int:
    return hash(type(self).__record_key__(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
    return f"{type(self).__qualname__}({shown})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


# -- __init__, compiled when first called ------------------------------------------


def _lazy_init(cls: type) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled = _compile_init(cls)
        type.__setattr__(cls, "__init__", compiled)
        compiled(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _compile_init(cls: type) -> Callable[..., None]:
    """What dataclasses writes for `__init__`, compiled from field names only (identifiers
    of the class's own annotations, never input)."""
    fields = _fields_of(cls)
    frozen = cls.__dict__["__record_frozen__"]
    scope: dict[str, Any] = {"_rec_set": object.__setattr__, "_rec_factory": _FACTORY}
    params, lines = [], []
    for i, (name, spec) in enumerate(fields.items()):
        value = name
        if spec.default_factory is not _MISSING:
            scope[f"_rec_make_{i}"] = spec.default_factory
            params.append(f"{name}=_rec_factory")
            value = f"_rec_make_{i}() if {name} is _rec_factory else {name}"
        elif spec.default is not _MISSING:
            scope[f"_rec_default_{i}"] = spec.default
            params.append(f"{name}=_rec_default_{i}")
        else:
            params.append(name)
        # the instance is `_rec_self`: a field may be called `self`, as in dataclasses
        lines.append(f"_rec_set(_rec_self, {name!r}, {value})" if frozen
                     else f"_rec_self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        lines.append("_rec_self.__post_init__()")
    source = (f"def __init__(_rec_self, {', '.join(params)}):\n"
              + "".join(f"    {line}\n" for line in lines or ["pass"]))
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), scope)  # noqa: S102
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init
