"""The `${{ }}` expressions of GitHub Actions, as far as our workflows use them.

Contexts, literals, `==`/`!=`/`<`/`>`, `!`, `&&`/`||`, and the functions a test
gives; anything else raises `ExpressionError`, so a workflow that starts using
more fails the tests instead of evaluating to ''. Used by tests/support/ghrunner.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


class ExpressionError(Exception):
    """An expression (or a part of a workflow) this emulator does not understand."""


class Nullable(dict):
    """A context whose unknown keys are null, as GitHub's `vars`, `secrets` and outputs
    are; every other context raises on an unknown key."""


# -- expressions ----------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
                   r"|(?P<op>==|!=|&&|\|\||[!(),.])|(?P<name>[A-Za-z_][\w-]*))")
STATUS = re.compile(r"\b(success|failure|always|cancelled)\s*\(")
EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def one_expression(text: str) -> str | None:
    """The inside of a string that is exactly one `${{ }}`, else None."""
    text = text.strip()
    if text.startswith("${{") and text.endswith("}}") and text.count("${{") == 1:
        return text[3:-2]
    return None


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        tokens.append(next((k, v) for k, v in m.groupdict().items() if v is not None))
        pos = m.end()
    return tokens


def to_str(value: Any) -> str:
    """How GitHub turns a value into text (env values, `${{ }}` in strings)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def to_num(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    if isinstance(value, (bool, int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def equal(a: Any, b: Any) -> bool:
    """GitHub's loose equality: strings compare ignoring case, other types as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b):
        return a == b
    return to_num(a) == to_num(b)


class Evaluator:
    """Recursive descent over ||, &&, ==/!=, !, calls, property paths and literals."""

    def __init__(self, text: str, ctx: Mapping[str, Any], functions: Mapping[str, Any]):
        self.text, self.tokens, self.i = text, tokenize(text), 0
        self.ctx, self.functions = ctx, functions

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}")
        self.i += 1
        return tok

    def evaluate(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.tokens[self.i][1]!r} in {self.text!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()  # both sides evaluated: an unknown name raises anyway
            value = value if value else right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.compare()
            value = right if value else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        if self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            same = equal(value, self.unary())
            return same if op == "==" else not same
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if value == "(":
            inner = self.or_()
            self.take(")")
            return inner
        if kind != "name":
            raise ExpressionError(f"unexpected {value!r} in {self.text!r}")
        if value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value]
        if self.peek() == ("op", "("):
            return self.call(value)
        return self.path(value)

    def call(self, name: str) -> Any:
        if name not in self.functions:
            raise ExpressionError(f"unknown function {name}() in {self.text!r}")
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        return self.functions[name](*args)

    def path(self, root: str) -> Any:
        if root not in self.ctx:
            raise ExpressionError(f"unknown context {root!r} in {self.text!r}")
        value, where = self.ctx[root], root
        while self.peek() == ("op", "."):
            self.take()
            key = self.take()[1]
            where += f".{key}"
            if isinstance(value, Nullable):
                value = value.get(key)
            elif isinstance(value, Mapping) and key in value:
                value = value[key]
            else:
                raise ExpressionError(f"{where} is not known (in {self.text!r})")
        return value
