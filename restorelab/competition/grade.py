"""Grade a class: run each team's notebook in the sandbox, check its model, score its outputs.

Taught in the course appendix ("Running the competition").

``submissions/TEAM/`` holds one team's notebook (exactly one ``*.ipynb``) and any files it needs
(e.g. weights trained on Colab). :func:`grade_class` copies each (regular files only) to
``results/work/TEAM``, runs it there with papermill in :mod:`restorelab.competition.sandbox`
(parameters ``DATA_DIR``, ``OUTPUT_DIR``: see :mod:`restorelab.competition.contract`), then
checks the model and scores ``outputs/`` against the private folder. Each team's report goes to
``results/teams/TEAM.json`` (its log to ``results/logs/TEAM.log``, its before/after thumbnail
to ``results/thumbs/TEAM.png``) and the leaderboard is rewritten from all reports, so grading
one team again replaces its row only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from restorelab.competition import leaderboard, sandbox
from restorelab.competition.contract import ContractError, check_model, one_line
from restorelab.competition.score import Truth, score_folder
from restorelab.io import read_image, to_uint8

TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KERNEL = "restorelab-sandbox"
THUMB = 96  # pixels of each half of the before/after thumbnail
MAX_NOTEBOOK_BYTES = 32 << 20


def teams_in(submissions: str | Path) -> list[str]:
    """The team folders of ``submissions``, sorted; raises on a name that is not safe."""
    folder = Path(submissions)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of submissions")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    for name in names:
        if not TEAM_NAME.match(name):
            raise ValueError(f"{folder / name}: a team folder name must match {TEAM_NAME.pattern}")
    if not names:
        raise FileNotFoundError(f"{folder}: no team folders")
    return names


def _copy_regular(source: Path, target: Path) -> None:
    """Copy the regular files of ``source`` into ``target`` (links and special files skipped)."""
    for root, folders, files in os.walk(source, followlinks=False):
        here = target / Path(root).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        folders[:] = [f for f in folders if not os.path.islink(os.path.join(root, f))]
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, here / name)


def _prepare(team_dir: Path, work: Path) -> Path:
    """A fresh work folder with the team's files and a kernel spec; returns the notebook."""
    if work.exists():
        shutil.rmtree(work)
    _copy_regular(team_dir, work)
    notebooks = sorted(work.glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ContractError(
            f"{team_dir.name}: expected one notebook (*.ipynb), found {len(notebooks)}"
        )
    spec = work / ".jupyter" / "data" / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    # the stdlib json packer: orjson (used when installed) crashes the kernel when an allocation
    # fails, so a kernel at its memory limit would die without a word instead of saying so
    spec.write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--Session.packer=json", "--Session.unpacker=json"],
        "display_name": "restorelab sandbox", "language": "python",
    }))  # fmt: skip
    for folder in (".tmp", ".ipython", ".cache"):
        (work / folder).mkdir()
    return notebooks[0]


def _environment(work: Path) -> dict[str, str]:
    """The sandbox's whole environment: nothing of the grader's (no tokens, no proxies)."""
    import restorelab

    package_root = Path(restorelab.__file__).resolve().parent.parent
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(work),
        "PYTHONPATH": str(package_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(work / ".tmp"),
        "JUPYTER_DATA_DIR": str(work / ".jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(work / ".jupyter" / "runtime"),
        "JUPYTER_CONFIG_DIR": str(work / ".jupyter" / "config"),
        "IPYTHONDIR": str(work / ".ipython"),
        "XDG_CACHE_HOME": str(work / ".cache"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(work / ".cache" / "matplotlib"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }


def _cell_error(executed: Path) -> str | None:
    """``ename: evalue`` of the first error in the executed notebook, if it can be read."""
    try:
        if executed.is_symlink() or executed.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        for cell in json.loads(executed.read_text()).get("cells", []):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    text = f"{output.get('ename')}: {output.get('evalue')}"
                    return f"In [{cell.get('execution_count')}]: {one_line(text)}"
    except (OSError, ValueError, AttributeError, TypeError):  # whatever the notebook left there
        return None
    return None


def _log_tail(log: Path) -> str:
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - 2000))
        lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    return one_line(lines[-1]) if lines else "no output"


def _thumbnail(scan_path: Path, restored_path: Path, target: Path) -> str | None:
    """Centre crops of a test scan and the team's restoration, side by side (PNG)."""
    try:
        if restored_path.is_symlink():
            return None
        halves = []
        for path in (scan_path, restored_path):
            image = to_uint8(read_image(path, "any"))
            image = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image
            top, left = max(0, image.shape[0] - THUMB) // 2, max(0, image.shape[1] - THUMB) // 2
            halves.append(image[top : top + THUMB, left : left + THUMB])
        gap = np.full((halves[0].shape[0], 4, 3), 255, np.uint8)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate([halves[0], gap, halves[1]], 1)).save(target)
        return target.name
    except Exception:  # a thumbnail is a nicety: a bad output already failed in scoring
        return None


def _report(team: str, isolation: str, reason: str = "") -> dict:
    """A failed report of ``team`` (grading fills it in)."""
    return {"team": team, "status": "failed", "reason": reason, "score": None, "psnr": None,
            "metric": None, "parameters": None, "seconds": None, "isolation": isolation,
            "graded_at": time.strftime("%Y-%m-%d %H:%M:%S"), "images": {}, "errors": [],
            "thumbnail": None, "uid": None}  # fmt: skip


def grade_team(
    team: str,
    submissions: Path,
    public: Path,
    truth: Truth,
    results: Path,
    limits: sandbox.Limits,
    isolation: str,
    uid: int,
) -> dict:
    """Grade one team (see module doc) and write its report; returns the report."""
    work, log = results / "work" / team, results / "logs" / f"{team}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    report = _report(team, isolation)
    report["uid"] = uid  # the sandbox user that ran it (every process of it is gone at the end)
    try:
        notebook = _prepare(submissions / team, work)
    except (ContractError, OSError) as error:
        report["reason"] = str(error)
        return _save(report, results)
    command = [sys.executable, "-m", "papermill", notebook.name, "executed.ipynb",
               "-p", "DATA_DIR", str(public), "-p", "OUTPUT_DIR", str(work), "-k", KERNEL,
               "--cwd", str(work), "--log-output", "--no-progress-bar"]  # fmt: skip
    mounts = sandbox.Mounts(work=work, read_only=(public, *sandbox.python_paths()))
    outcome = sandbox.run(command, mounts, limits, log, isolation, uid, _environment(work))
    report["seconds"] = round(outcome.seconds, 2)
    if outcome.status != "ok":
        cell = _cell_error(work / "executed.ipynb") if outcome.status == "failed" else None
        report["reason"] = f"{outcome.status}: {cell or outcome.reason or _log_tail(log)}"
        if outcome.status == "failed" and not cell:
            report["reason"] += f" ({_log_tail(log)})"
        return _save(report, results)
    scored = score_folder(work / "outputs", truth)
    report.update(metric=scored["metric"], images=scored["images"], errors=scored["errors"])
    first = truth.names[0]
    restored = truth.by_stem[Path(first).stem]
    candidates = sorted((work / "outputs").glob(f"{Path(restored).stem}.*"))
    if candidates:
        report["thumbnail"] = _thumbnail(
            public / "test" / "scan" / first, candidates[0], results / "thumbs" / f"{team}.png"
        )
    try:
        report["parameters"] = check_model(work)
    except ContractError as error:
        report["errors"].append(str(error))
    except Exception as error:  # the grader never crashes on one team
        report["errors"].append(f"model: {type(error).__name__}: {error}")
    if report["errors"]:
        report["reason"] = "rejected: " + "; ".join(report["errors"][:3])
        if len(report["errors"]) > 3:
            report["reason"] += f"; ... ({len(report['errors'])} problems)"
        return _save(report, results)
    report.update(status="ok", score=scored["score"], psnr=scored["psnr"])
    return _save(report, results)


def _save(report: dict, results: Path) -> dict:
    path = results / "teams" / f"{report['team']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
    return report


def _check_private(private: Path, visible: list[Path]) -> None:
    private = private.resolve()
    for folder in visible:
        if private == folder.resolve() or folder.resolve() in private.parents:
            raise ValueError(
                f"{private}: the private folder is inside {folder}, which submissions see"
            )


def grade_class(
    submissions: str | Path,
    public: str | Path,
    private: str | Path,
    results: str | Path,
    limits: sandbox.Limits | None = None,
    isolation: str = "auto",
    jobs: int = 1,
    teams: list[str] | None = None,
) -> list[dict]:
    """Grade ``teams`` (default: every team folder of ``submissions``), ``jobs`` at a time, and
    rewrite the leaderboard in ``results``. Returns the reports of the teams graded now."""
    submissions, public, results = (
        Path(submissions),
        Path(public).resolve(),
        Path(results).resolve(),
    )
    known = teams_in(submissions)
    chosen = teams or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise FileNotFoundError(f"{submissions}: no folder for team(s) {', '.join(unknown)}")
    if not (public / "test" / "scan").is_dir():
        raise FileNotFoundError(f"{public}: no test/scan folder (is this a public folder?)")
    _check_private(Path(private), [public, results, *sandbox.python_paths()])
    truth = Truth(private)
    mode = sandbox.choose_isolation(isolation)
    limits = limits or sandbox.Limits()

    def one(team: str) -> dict:
        try:
            with sandbox.sandbox_user() as uid:
                return grade_team(team, submissions, public, truth, results, limits, mode, uid)
        except Exception as error:  # a grader bug fails this team, never the class
            return _save(
                _report(team, mode, f"grader error: {type(error).__name__}: {error}"), results
            )

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        reports = list(pool.map(one, chosen))
    leaderboard.write(results)
    return reports
