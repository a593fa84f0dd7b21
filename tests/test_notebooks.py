"""Labs run top to bottom with papermill; only exercise cells may raise NotImplementedError."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


@pytest.mark.notebooks
@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_lab_runs_with_only_exercise_cells_raising(lab, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / lab.name
    try:  # allow_errors reaches nbclient: every cell runs, papermill raises at the end
        papermill.execute_notebook(
            str(lab), str(out), parameters={"QUICK": True}, cwd=str(tmp_path),
            kernel_name="python3", progress_bar=False, allow_errors=True,
        )  # fmt: skip
    except papermill.PapermillExecutionError:
        pass  # judged cell by cell below
    executed = nbformat.read(out, as_version=4)
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            if output.output_type != "error":
                continue
            where = f"{lab.name} cell {index}: {output.ename}: {output.evalue}"
            assert "exercise" in cell.metadata.get("tags", []), (
                f"a non-exercise cell raised: {where}"
            )
            assert output.ename == "NotImplementedError", f"an exercise raised otherwise: {where}"
    assert any("not done yet" in str(cell.get("outputs")) for cell in executed.cells), (
        "the check cells should report the unfinished exercises"
    )


@pytest.mark.notebooks
def test_refresh_stores_only_the_checked_cells_outputs(tmp_path):
    pytest.importorskip("papermill")
    from nbformat.v4 import new_code_cell, new_notebook

    from restorelab.labs import refresh_check_outputs

    parameters = new_code_cell("QUICK = False")
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        parameters,
        new_code_cell("print('not stored', QUICK)"),
        new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('quick:', QUICK, open('here.txt').read())"),
    ]
    (tmp_path / "here.txt").write_text("ran in its folder")
    path = tmp_path / "nb.ipynb"
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nbformat.write(notebook, path)
    report = refresh_check_outputs(path)
    stored = nbformat.read(path, as_version=4).cells
    assert stored[1].outputs == []
    assert stored[2].outputs[0]["text"] == "quick: True ran in its folder\n"
    assert stored[2].execution_count is not None
    assert report == [f"nb.ipynb {stored[2].id}: quick: True ran in its folder"]
