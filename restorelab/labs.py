"""Student labs generated from the instructor's solutions (nbgrader-style markers).

Taught in the book's appendix on how the course is built. ``solutions/NN_name.ipynb`` marks
exercise code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the lab replaces each
marked block with a stub that raises ``NotImplementedError``, tags the cell ``exercise``, and
strips every output. ``check_all`` fails when ``labs/`` is stale (differs from what ``build``
would write), when a lab has no solution, or when a lab still holds solution code.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: write your solution here")'
_BLOCK = re.compile(
    rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
    re.MULTILINE | re.DOTALL,
)


def strip_solutions(source: str) -> tuple[str, int]:
    """Replace every marked block of ``source`` by a stub at the marker's indentation.

    Returns (new source, number of blocks). An unbalanced marker raises ValueError.
    """
    new, count = _BLOCK.subn(lambda m: f"{m.group('indent')}{STUB}", source)
    if BEGIN in new or END in new:
        raise ValueError(f"unbalanced solution markers in:\n{source}")
    return new, count


def make_lab(solution: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """The student version of a solution notebook."""
    lab = copy.deepcopy(solution)
    exercises = 0
    for cell in lab.cells:
        if cell.cell_type != "code":
            continue
        try:
            cell.source, count = strip_solutions(cell.source)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        if count:
            exercises += 1
            tags = cell.metadata.setdefault("tags", [])
            if "exercise" not in tags:
                tags.append("exercise")
    if not exercises:
        raise ValueError(f"{name}: no '{BEGIN}' block, so the lab would have no exercise")
    lab.metadata.pop("papermill", None)
    return lab


def _expected(solution_path: Path) -> str:
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(make_lab(solution, str(solution_path))) + "\n"


def build_all(solutions: str | Path = "solutions", labs: str | Path = "labs") -> list[Path]:
    """Write ``labs/X.ipynb`` for every ``solutions/X.ipynb``; returns the written paths."""
    solutions, labs = Path(solutions), Path(labs)
    labs.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(solutions.glob("*.ipynb")):
        target = labs / path.name
        target.write_text(_expected(path))
        written.append(target)
    return written


def check_all(solutions: str | Path = "solutions", labs: str | Path = "labs") -> list[str]:
    """Problems that make ``labs/`` differ from what :func:`build_all` writes (empty: all good)."""
    solutions, labs = Path(solutions), Path(labs)
    problems = []
    sources = {p.name: p for p in solutions.glob("*.ipynb")}
    if not sources:
        problems.append(f"{solutions}: no solution notebooks")
    for name, path in sorted(sources.items()):
        lab = labs / name
        if not lab.exists():
            problems.append(f"{lab}: missing; run `restorelab labs build`")
            continue
        text = lab.read_text()
        if BEGIN in text or END in text:
            problems.append(f"{lab}: still holds solution markers (solution code leaked)")
        if text != _expected(path):
            problems.append(f"{lab}: stale, differs from {path}; run `restorelab labs build`")
    for lab in sorted(labs.glob("*.ipynb")):
        if lab.name not in sources:
            problems.append(f"{lab}: no matching solution in {solutions}")
    return problems


CHECKED = "# NBVAL_CHECK_OUTPUT"


def refresh_check_outputs(path: str | Path, parameters: dict | None = None) -> list[str]:
    """Run notebook ``path`` (QUICK by default) and store the outputs of its checked cells.

    ``nbval --nbval-lax`` compares only the cells whose source starts with ``# NBVAL_CHECK_OUTPUT``
    (the solutions' check cells): their stored outputs are what CI expects. Every other cell is left as it is, without outputs.
    The notebook runs in its own folder, as nbval and jupyter-book run it. Returns the stored
    outputs' text, one line per checked cell.
    """
    try:
        import papermill
    except ImportError as error:
        raise ImportError(
            "refreshing check outputs needs papermill: pip install papermill"
        ) from error
    import tempfile

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        executed_path = Path(tmp) / path.name
        papermill.execute_notebook(
            str(path), str(executed_path), parameters=parameters or {"QUICK": True},
            cwd=str(path.parent), kernel_name="python3", progress_bar=False,
        )  # fmt: skip
        executed = {cell.id: cell for cell in nbformat.read(executed_path, as_version=4).cells}
    report = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECKED):
            cell.outputs = executed[cell.id].outputs
            cell.execution_count = executed[cell.id].execution_count
            text = "".join(output.get("text", "") for output in cell.outputs).strip()
            report.append(f"{path.name} {cell.id}: {text}")
    nbformat.write(notebook, path)
    return report
