"""What the site shows of a chapter's code: the build's own checks run in hidden cells.

A chapter asserts its stored QUICK numbers and the claims of its prose (an order, a sign) so the
build fails when they stop holding; those asserts are tagged ``remove-cell``, so a reader of the
site never sees an ``assert`` in the code of a chapter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


def _asserts(source: str) -> int:
    tree = ast.parse(TransformerManager().transform_cell(source))  # magics become Python
    return sum(isinstance(node, ast.Assert) for node in ast.walk(tree))


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_shown_code_cell_asserts(path):
    notebook = nbformat.read(path, as_version=4)
    shown = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and "remove-cell" not in cell.metadata.get("tags", []) and _asserts(cell.source)]  # fmt: skip
    assert not shown, f"{path.name}: code cells {shown} show an assert on the site (tag it remove-cell)"


def test_the_hidden_checks_still_run_the_stored_quick_comparison():
    hidden = [cell.source for path in CHAPTERS for cell in nbformat.read(path, as_version=4).cells
              if "remove-cell" in cell.metadata.get("tags", [])]  # fmt: skip
    assert sum("matches_stored(live)" in source for source in hidden) >= 6  # chapters 1-6 and 9
