"""Sizes, depth, duplicate keys and huge numbers in the JSON users hand to mlops (issue 16).

Each is one line, the documented exit code, nothing changed: a build record's
problems are errors (exit 1), a metrics file's fail the gate (exit 3), since
evidence that cannot be read is no evidence. `mlops.safejson` holds the limits.
"""

from __future__ import annotations

from tests.bad_inputs.corpus import Case, check, nothing, params, with_input

TO_DEV = ["promote", "--to", "dev", "--build", "{base}/build.json"]
TO_STAGING = ["promote", "--to", "staging", "--from", "dev", "--metrics", "{base}/m.json"]
FINE = '"f1": 0.94, "roc_auc": 0.97'
DEEP = "[" * 100_000 + "]" * 100_000


def _record(text: str):
    return with_input("build.json", text)


def _metrics(text: str):
    return with_input("m.json", text)


SIZES = [
    Case("build-record-from-dev-zero", "bare", nothing,
         ["promote", "--to", "dev", "--build", "/dev/zero"], 1,
         "/dev/zero: not a readable JSON build record (larger than the limit of"),
    Case("build-record-nested-deep", "bare", _record('{"builds": ' + DEEP + "}"), TO_DEV, 1,
         "(nested deeper than the limit of 32)"),
    Case("build-record-nested-past-the-limit", "bare",
         _record('{"builds": ' + "[" * 40 + "]" * 40 + "}"), TO_DEV, 1,
         "(nested deeper than the limit of 32)"),
    Case("build-record-duplicate-key", "bare",
         _record('{"builds": [], "source_commit": "a", "builds": []}'), TO_DEV, 1,
         "(duplicate key 'builds')"),
    Case("metrics-from-dev-zero", "staged", nothing,
         ["promote", "--to", "staging", "--from", "dev", "--metrics", "/dev/zero"], 3,
         "metrics file /dev/zero is unreadable: larger than the limit of"),
    Case("metrics-nested-deep", "staged", _metrics(DEEP), TO_STAGING, 3,
         "is unreadable: nested deeper than the limit of 32"),
    Case("metrics-duplicate-key", "staged",
         _metrics('{"accuracy": 0.5, "accuracy": 0.99, ' + FINE + "}"), TO_STAGING, 3,
         "is unreadable: duplicate key 'accuracy'"),
    Case("metrics-400-digit-integer", "staged", _metrics('{"accuracy": ' + "9" * 400 + ", "
                                                         + FINE + "}"), TO_STAGING, 3,
         "accuracy-threshold: accuracy is inf, not a measurement"),
]


@params(SIZES)
def test_oversized_or_hostile_json_is_one_line(world, case, capsys):
    check(world, case, capsys)
