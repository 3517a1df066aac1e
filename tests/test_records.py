"""mlops.records against the standard library's dataclasses, side by side.

Each case defines the same classes with both decorators (`kinds` below) and
checks that they behave alike where mlops relies on it, and that defining a
record costs no compile and no `dataclasses` import.
"""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import pytest

from mlops import records


def kinds() -> list[SimpleNamespace]:
    return [SimpleNamespace(name="dataclasses", dataclass=dataclasses.dataclass,
                            field=dataclasses.field, replace=dataclasses.replace,
                            asdict=dataclasses.asdict, frozen_error=dataclasses.FrozenInstanceError),
            SimpleNamespace(name="records", dataclass=records.dataclass, field=records.field,
                            replace=records.replace, asdict=records.asdict,
                            frozen_error=records.FrozenInstanceError)]


@pytest.fixture(params=kinds(), ids=lambda k: k.name)
def kind(request: pytest.FixtureRequest) -> SimpleNamespace:
    return request.param  # type: ignore[no-any-return]


def point_class(k: SimpleNamespace) -> Any:
    @k.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 0
        tags: list[str] = k.field(default_factory=list)
        note: str = k.field(default="", compare=False)
        secret: str = k.field(default="", repr=False)

    return Point


def test_fields_defaults_and_factories(kind):
    point = point_class(kind)
    a, b = point(1), point(1)
    assert (a.x, a.y, a.tags, a.note) == (1, 0, [], "")
    assert a.tags is not b.tags  # one list per instance
    assert point(1, 2, ["t"], "n", "s").tags == ["t"]
    assert point(y=3, x=4).y == 3


def test_equality_hash_and_repr_match_the_standard_library():
    std, ours = (point_class(k) for k in kinds())
    for cls in (std, ours):
        a, b = cls(1, 2, note="a", secret="x"), cls(1, 2, note="b", secret="y")
        assert a != b  # secret is compared
        assert cls(1, 2, note="a") == cls(1, 2, note="b")  # note is not
        assert hash(cls(1, 2, ("t",))) == hash(cls(1, 2, ("t",), note="other"))
        assert cls(1) != cls(2) and cls(1) != (1, 0, [], "", "")
    assert repr(ours(1, 2, ["t"], "n", "s")) == repr(std(1, 2, ["t"], "n", "s"))
    assert "secret" not in repr(ours(1, secret="s"))


def test_a_frozen_record_refuses_assignment(kind):
    point = point_class(kind)(1)
    with pytest.raises(kind.frozen_error, match="cannot assign to field 'x'"):
        point.x = 2
    with pytest.raises(AttributeError):
        del point.y
    assert point.x == 1


def test_a_mutable_record_assigns_and_has_no_hash(kind):
    @kind.dataclass
    class Box:
        items: list[int] = kind.field(default_factory=list)

    box = Box()
    box.items = [1]
    assert box == Box([1])
    with pytest.raises(TypeError):
        hash(box)


def test_post_init_runs_on_creation_and_on_replace(kind):
    @kind.dataclass(frozen=True)
    class Positive:
        n: int

        def __post_init__(self) -> None:
            if self.n <= 0:
                raise ValueError("not positive")

    one = Positive(1)
    assert kind.replace(one, n=2) == Positive(2)
    with pytest.raises(ValueError, match="not positive"):
        Positive(0)
    with pytest.raises(ValueError, match="not positive"):
        kind.replace(one, n=-1)
    with pytest.raises(TypeError):
        kind.replace(one, m=1)


def test_bad_calls_are_type_errors(kind):
    point = point_class(kind)
    for call in (lambda: point(), lambda: point(1, 2, [], "", "", 6), lambda: point(1, z=2),
                 lambda: point(1, x=1)):
        with pytest.raises(TypeError):
            call()


def test_bad_definitions_are_refused(kind):
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @kind.dataclass(frozen=True)
        class Order:
            a: int = 0
            b: int

    with pytest.raises(ValueError, match="mutable default .* is not allowed"):
        @kind.dataclass
        class Mutable:
            a: list[int] = []  # noqa: RUF012

    with pytest.raises(ValueError, match="cannot specify both default and default_factory"):
        kind.field(default=1, default_factory=int)

    with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__ in class Own"):
        @kind.dataclass(frozen=True)
        class Own:
            a: int

            def __setattr__(self, name: str, value: object) -> None:
                pass


def test_inheritance_orders_fields_base_first(kind):
    @kind.dataclass(frozen=True)
    class Base:
        sha: str
        time: int | None

    @kind.dataclass(frozen=True)
    class Child(Base):
        extra: str = "e"

        def shout(self) -> str:
            return self.sha.upper()

    child = Child("abc", 1)
    assert (child.sha, child.time, child.extra, child.shout()) == ("abc", 1, "e", "ABC")
    assert child != Base("abc", 1) and Base("abc", 1) == Base("abc", 1)
    assert kind.replace(child, time=2) == Child("abc", 2)
    assert Child.__match_args__ == ("sha", "time", "extra")
    with pytest.raises(TypeError):
        @kind.dataclass
        class Thawed(Base):
            more: int = 0


def test_methods_a_class_defines_are_kept(kind):
    @kind.dataclass(frozen=True)
    class Odd:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

        def __repr__(self) -> str:
            return "odd"

    assert Odd(1) == Odd(2) and hash(Odd(1)) == 7 and repr(Odd(1)) == "odd"


def test_a_mapping_record_reads_as_the_standard_one(kind):
    @kind.dataclass(frozen=True)
    class Doc(Mapping[str, Any]):
        name: str
        doc: Mapping[str, Any]

        def __getitem__(self, key: str) -> Any:
            return self.doc[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self.doc)

        def __len__(self) -> int:
            return len(self.doc)

    d = Doc("n", {"a": 1})
    assert dict(d) == {"a": 1} and d == Doc("n", {"a": 1}) and d != Doc("m", {"a": 1})
    assert hash(Doc("n", ())) == hash(Doc("n", ()))  # type: ignore[arg-type]


def test_asdict_recurses_as_the_standard_one():
    results = []
    for k in kinds():
        @k.dataclass(frozen=True)
        class Leaf:
            name: str
            value: int | None = None

        @k.dataclass(frozen=True)
        class Tree:
            leaves: tuple[Leaf, ...]
            by_name: dict[str, Leaf]
            flag: bool = False

        tree = Tree((Leaf("a", 1), Leaf("b")), {"a": Leaf("a", 1)}, True)
        results.append(k.asdict(tree))
        with pytest.raises(TypeError):
            k.asdict(Tree)
    assert results[0] == results[1]
    assert results[1]["leaves"] == ({"name": "a", "value": 1}, {"name": "b", "value": None})


def test_the_corners_a_review_found_behave_as_the_standard_ones(kind):
    @kind.dataclass(frozen=True)
    class Score:
        value: float

    nan = Score(float("nan"))
    assert nan == kind.replace(nan) and hash(nan) == hash(kind.replace(nan))  # tuple `is` first

    @kind.dataclass(frozen=True)
    class Named:
        self: str  # dataclasses allows it
        pair: tuple[int, int] = (0, 0)

    assert Named("me").self == "me"

    import collections
    Pair = collections.namedtuple("Pair", "left right")
    assert kind.asdict(Named("x", Pair(1, 2)))["pair"] == Pair(1, 2)


def test_a_field_name_the_generated_init_uses_is_refused_when_defined():
    with pytest.raises(TypeError, match="reserved '_rec_'"):
        @records.dataclass(frozen=True)
        class Clash:
            _rec_set: int


def test_cached_property_and_pickle_work_on_a_frozen_record():
    @records.dataclass(frozen=True)
    class Spec:
        folder: str

        @cached_property
        def paths(self) -> tuple[str, ...]:
            return (self.folder, self.folder + "/x")

    spec = Spec("c")
    assert spec.paths is spec.paths == ("c", "c/x")
    global Pickled  # pickle finds a class by its module-level name

    @records.dataclass(frozen=True)
    class Pickled:
        a: int
        b: tuple[int, ...] = ()

    assert pickle.loads(pickle.dumps(Pickled(1, (2,)))) == Pickled(1, (2,))


def test_init_is_compiled_once_on_first_call():
    @records.dataclass(frozen=True)
    class Lazy:
        a: int

    stub = Lazy.__dict__["__init__"]
    assert Lazy(1).a == 1
    compiled = Lazy.__dict__["__init__"]
    assert compiled is not stub and compiled.__qualname__.endswith("Lazy.__init__")
    assert Lazy(2).a == 2 and Lazy.__dict__["__init__"] is compiled


def test_the_commands_load_neither_dataclasses_nor_an_executor():
    """What records and thread_map were written for: a fresh build plan, promotion or
    history loads neither `dataclasses` (and `inspect`) nor `concurrent.futures` (and
    `logging`)."""
    probe = ("import sys, mlops.cli, mlops.commands.build, mlops.commands.promote, "
             "mlops.commands.history, mlops.adapters.registry, mlops.services.promotion; "
             "print(sorted(m for m in ('dataclasses', 'inspect', 'concurrent.futures', "
             "'logging') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
