"""PromQL templates: `{{ service }}`, `{{ namespace }}`, `{{ revision }}`,
`{{ baseline_revision }}` and `{{ interval }}`, checked before they are filled.

Values are validated too, so nothing a template receives can break out of a
label matcher or a range selector.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mlops.errors import ConfigError

VARIABLES = ("service", "namespace", "revision", "baseline_revision", "interval")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_INTERVAL = re.compile(r"^\d+(ms|s|m|h|d)$")


def check_template(template: str, where: str) -> None:
    """Refuse unknown variables and stray braces, at config load."""
    for name in _PLACEHOLDER.findall(template):
        if name not in VARIABLES:
            raise ConfigError(
                f"{where}: unknown template variable {{{{ {name} }}}} "
                f"(known: {', '.join(VARIABLES)})"
            )
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise ConfigError(f"{where}: unbalanced '{{{{' or '}}}}' in the query template")


def render(template: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None:
            raise ConfigError(f"query needs {{{{ {name} }}}} but it has no value here")
        pattern = _INTERVAL if name == "interval" else _SAFE_VALUE
        if not pattern.match(value):
            raise ConfigError(f"refusing {name}={value!r} in a query: not a plain name")
        return value

    return _PLACEHOLDER.sub(fill, template)
