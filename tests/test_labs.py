from pathlib import Path

import nbformat
import pytest

from restorelab import labs

ROOT = Path(__file__).resolve().parents[1]


def test_strip_solutions_keeps_indentation_and_surroundings():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\nprint(f)"
    new, count = labs.strip_solutions(source)
    assert count == 1
    assert new == f"def f(x):\n    {labs.STUB}\n\nprint(f)"


def test_unbalanced_markers_are_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def _solution():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    cell.outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    return nb


def test_make_lab_stubs_tags_and_strips_outputs():
    lab = labs.make_lab(_solution())
    code = lab.cells[1]
    assert "y = 2" not in code.source and labs.STUB in code.source
    assert code.outputs == [] and "exercise" in code.metadata.tags


def test_check_detects_stale_and_leaked_labs(tmp_path):
    solutions, out = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    nbformat.write(_solution(), solutions / "01.ipynb")
    assert labs.check_all(solutions, out)  # missing
    labs.build_all(solutions, out)
    assert labs.check_all(solutions, out) == []
    nbformat.write(_solution(), out / "01.ipynb")  # the solution copied over the lab
    problems = " ".join(labs.check_all(solutions, out))
    assert "solution markers" in problems and "stale" in problems


def test_repository_labs_are_up_to_date():
    assert labs.check_all(ROOT / "solutions", ROOT / "labs") == []
