"""Vendored data: counts, fields, and the sha256 check at load."""
import shutil

import pytest

from evals.datasets import DATA_FILES, DEFAULT_DATA_DIR, PROBLEM_COUNTS, DataIntegrityError, load_problems


def test_counts_and_fields():
    humaneval = load_problems("humaneval")
    plus = load_problems("humaneval_plus")
    math = load_problems("math500")
    assert len(humaneval) == len(plus) == 164 and len(math) == 500
    assert PROBLEM_COUNTS == {"humaneval": len(humaneval), "humaneval_plus": len(plus), "math500": len(math)}
    assert [p.task_id for p in humaneval] == [f"HumanEval/{i}" for i in range(164)]
    assert sum(len(p.base_inputs) for p in plus) == 1570 and sum(len(p.plus_inputs) for p in plus) == 122683
    assert {p.level for p in math} == {1, 2, 3, 4, 5} and len({p.subject for p in math}) == 7
    assert humaneval[32].entry_point == "find_zero" and plus[32].atol == 1e-4


def test_data_ships_inside_the_package():
    assert DEFAULT_DATA_DIR.parent.name == "evals"
    for name, _ in DATA_FILES.values():
        assert (DEFAULT_DATA_DIR / name).is_file()


def test_modified_file_is_a_clear_error(tmp_path):
    for name, _ in DATA_FILES.values():
        shutil.copy(DEFAULT_DATA_DIR / name, tmp_path / name)
    assert len(load_problems("math500", tmp_path)) == 500
    path = tmp_path / DATA_FILES["math500"][0]
    path.write_bytes(path.read_bytes().replace(b"Algebra", b"Algebrb", 1))
    with pytest.raises(DataIntegrityError, match="sha256"):
        load_problems("math500", tmp_path)
    (tmp_path / DATA_FILES["humaneval"][0]).unlink()
    with pytest.raises(DataIntegrityError, match="missing"):
        load_problems("humaneval", tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_problems("mmlu")
