"""Execute the book's chapters into Jupyter Book's cache, one per CPU core at a time.

``jupyter-book build`` executes notebooks one after the other; on 2 cores that leaves one idle
while a chapter plots or starts its kernel. CI runs this first, then the strict build finds
every chapter's outputs in ``_build/.jupyter_cache`` and executes nothing again. A chapter
that fails here is not cached: the build executes it again and fails with its traceback, so
the build stays the judge. Same kernel, working folder (the notebook's) and timeout as the
build (``execute.timeout`` in ``_config.yml``).

    python scripts/execute_book.py [NOTEBOOK ...]   # default: book/*.ipynb
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"  # where myst-nb looks: the HTML folder's parent


def main(paths: list[str]) -> int:
    notebooks = [Path(p).resolve() for p in paths] or sorted((ROOT / "book").glob("*.ipynb"))
    timeout = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
    cache = get_cache(CACHE)
    for notebook in notebooks:
        cache.add_nb_to_project(str(notebook))
    started = time.perf_counter()
    result = load_executor("local-parallel", cache=cache).run_and_cache(
        filter_uris=[str(n) for n in notebooks], timeout=timeout, allow_errors=False
    )
    seconds = time.perf_counter() - started
    failed = [Path(uri).name for uri in result.excepted + result.errored]
    print(f"executed {len(result.succeeded)} of {len(notebooks)} chapters in {seconds:.0f} s"
          + (f"; failed (the build shows why): {', '.join(failed)}" if failed else ""))  # fmt: skip
    for record in cache.list_cache_records():
        print(f"  {Path(record.uri).name}: {record.data.get('execution_seconds', 0):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
