"""Whole-file writes: what a failed rename says, and what it leaves behind."""

from __future__ import annotations

import os

import pytest

from mlops.atomicfile import write_json_atomic, write_text_atomic


def test_a_directory_in_the_way_is_named_not_the_temp_file(tmp_path):
    target = tmp_path / "out.json"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as err:
        write_json_atomic(target, {"a": 1})
    assert err.value.filename == str(target) and err.value.filename2 is None
    assert os.listdir(tmp_path) == ["out.json"]  # no temp file left beside it


def test_an_exclusive_write_over_a_file_is_a_file_exists_error_naming_it(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("first\n")
    with pytest.raises(FileExistsError) as err:
        write_text_atomic(target, "second\n", exclusive=True)
    assert err.value.filename == str(target)
    assert target.read_text() == "first\n" and os.listdir(tmp_path) == ["record.json"]
