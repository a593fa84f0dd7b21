"""What torch.compile built is kept beside last.pt, and a resumed run does not compile again."""

from __future__ import annotations

import json
import subprocess
import sys

from train_runs import ROOT, environment

from restorelab.train.checkpoint import open_run
from restorelab.train.compile_cache import CACHE_FILE, load_compiled
from restorelab.train.config import TrainConfig

# one fit of test_train's tiny SRCNN run, compiled, in a fresh process; prints Inductor's counters
FIT = """
import json, sys
from torch._dynamo.utils import counters
sys.path.insert(0, "tests")
from test_train import _trainer
_trainer(sys.argv[1], int(sys.argv[2]), compile=True, tensorboard=False).fit(resume=True)
print(json.dumps(dict(counters["inductor"])))
"""


def _fit(out_dir, steps: int, inductor_cache) -> dict:
    """Fit to ``steps`` in a new process whose on-disk Inductor cache starts empty."""
    env = {**environment(), "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache)}
    done = subprocess.run([sys.executable, "-c", FIT, str(out_dir), str(steps)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_resumed_run_loads_what_it_compiled_instead_of_compiling(tmp_path):
    first = _fit(tmp_path / "run", 4, tmp_path / "inductor-1")
    assert first.get("fxgraph_cache_miss", 0) > 0 and not first.get("fxgraph_cache_hit")
    assert (tmp_path / "run" / CACHE_FILE).stat().st_size > 0
    # a new machine (empty Inductor cache): only the run folder carries the compiled graphs
    resumed = _fit(tmp_path / "run", 8, tmp_path / "inductor-2")
    assert resumed.get("fxgraph_cache_hit", 0) >= first["fxgraph_cache_miss"]
    assert not resumed.get("fxgraph_cache_miss")


def test_an_unusable_cache_is_named_and_skipped_and_overwrite_deletes_it(tmp_path, capsys):
    (tmp_path / CACHE_FILE).write_bytes(b"not a cache")
    assert load_compiled(tmp_path) is False
    assert f"{tmp_path / CACHE_FILE}: not usable" in capsys.readouterr().err
    assert load_compiled(tmp_path / "elsewhere") is False  # no file: nothing to say
    assert capsys.readouterr().err == ""
    open_run(tmp_path, TrainConfig(), resume=False, overwrite=True, require_run=False)
    assert not (tmp_path / CACHE_FILE).exists()
