"""Grade a class: run each team's notebook in the sandbox, check its model, score its outputs.

Taught in the course appendix ("Running the competition").

``submissions/TEAM/`` holds one team's notebook (exactly one ``*.ipynb``) and any files it needs
(e.g. weights trained on Colab). :func:`grade_class` copies each (regular files only) to
``results/work/TEAM``, runs it there with papermill in :mod:`restorelab.competition.sandbox`
(parameters ``DATA_DIR``, ``OUTPUT_DIR``: see :mod:`restorelab.competition.contract`), then
scores ``outputs/`` against the private folder, and checks the model in a second sandboxed
step (:mod:`restorelab.competition.verify`: the declared model built, counted and loaded with
the team's weights, and :data:`SAMPLE` test scans, chosen per team, restored again and compared
with the team's outputs). The runner is ``python -I`` (no team file can shadow a module it
imports); every file of the work folder is read by
:func:`restorelab.competition.untrusted.read_file`; the thumbnail is made from the decoded
pixels scoring accepted. Each team's report goes to ``results/teams/TEAM.json`` (its logs to
``results/logs/TEAM.log`` and ``TEAM.verify.log``, its before/after thumbnail to
``results/thumbs/TEAM.png``) and the leaderboard is rewritten from all reports, so grading one
team again replaces its row only. Any error while grading a team, the grader's own included,
becomes that team's row with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import re
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restorelab.competition import leaderboard, sandbox
from restorelab.competition.contract import (
    MAX_WEIGHTS_BYTES,
    OUTPUT_TOLERANCE,
    ContractError,
    one_line,
)
from restorelab.competition.score import Truth, decode_checked, score_outputs
from restorelab.competition.trees import remove_tree
from restorelab.competition.untrusted import UntrustedFileError, copy_tree, read_file
from restorelab.io import to_uint8

TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KERNEL = "restorelab-sandbox"
THUMB = 96  # pixels of each half of the before/after thumbnail
MAX_NOTEBOOK_BYTES = 32 << 20
MAX_PARSED_NOTEBOOK_BYTES = 4 << 20  # parsed for its error cell (a JSON parse takes ~25x this)
REASON_CHARS = 1000  # a report's reason: three errors of at most 300 characters, and the count
SAMPLE = 2  # test scans the verification step restores again, chosen per team
VERIFY_SECONDS = 300  # the verification step's least time (see verify_limits)
VERIFY_MB = 16
MAX_RESULT_BYTES = 64 << 10


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


def _prepare(team_dir: Path, work: Path, disk_mb: int) -> Path:
    """The team's files (links and special files skipped, at most ``disk_mb`` MB in all) and a
    kernel spec in the (new, empty) work folder; returns the notebook."""
    copy_tree(team_dir, work, MAX_WEIGHTS_BYTES, disk_mb << 20)
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
        # no -I here: the kernel runs the team's code anyway, and its own modules beside the
        # notebook must import; -I protects the runner (papermill), which the grader trusts
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--Session.packer=json", "--Session.unpacker=json"],
        "display_name": "restorelab sandbox", "language": "python",
    }))  # fmt: skip
    for folder in (".tmp", ".ipython", ".cache"):
        (work / folder).mkdir()
    return notebooks[0]


def _package_root() -> Path:
    """The folder holding the grader's ``restorelab`` package (the sandbox shows it)."""
    import restorelab

    return Path(restorelab.__file__).resolve().parent.parent


def _environment(work: Path) -> dict[str, str]:
    """The sandbox's whole environment: nothing of the grader's (no tokens, no proxies)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(work),
        "PYTHONPATH": str(_package_root()),
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
        for cell in json.loads(read_file(executed, MAX_PARSED_NOTEBOOK_BYTES)).get("cells", []):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    count = cell.get("execution_count")
                    count = count if type(count) is int else "?"
                    text = f"{output.get('ename')}: {output.get('evalue')}"
                    return f"In [{count}]: {one_line(text)}"
    except (UntrustedFileError, ValueError, AttributeError, TypeError, RecursionError):
        return None  # whatever the notebook left there (the kernel can write it itself)
    return None


def _log_tail(log: Path) -> str:
    try:
        lines = read_file(log, 2000, last=True).decode("utf-8", "replace").strip().splitlines()
    except UntrustedFileError as error:
        return str(error)
    return one_line(lines[-1]) if lines else "no output"


def _thumbnail(scan_path: Path, restored: torch.Tensor, target: Path) -> str:
    """Centre crops of a test scan and the team's restoration (the pixels scoring decoded),
    side by side (PNG)."""
    # decoded as scoring decodes (under its lock): Pillow's pixel limit is global, and another
    # team's scoring may have lowered it for a smaller page at this very moment
    scan = decode_checked(scan_path.read_bytes(), scan_path.name, tuple(restored.shape[-2:]))
    halves = []
    for image in (to_uint8(scan), to_uint8(restored)):
        image = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image
        top, left = max(0, image.shape[0] - THUMB) // 2, max(0, image.shape[1] - THUMB) // 2
        halves.append(image[top : top + THUMB, left : left + THUMB])
    gap = np.full((halves[0].shape[0], 4, 3), 255, np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([halves[0], gap, halves[1]], 1)).save(target)
    return target.name


def _sample(team: str, restored: dict[str, torch.Tensor], truth: Truth) -> list[str]:
    """:data:`SAMPLE` of the pages in ``restored`` (name -> pixels scoring accepted), seeded by
    the private files' checksums, the team's name and those pixels: no team can know in advance
    which pages are checked, a grading of the same submission checks the same ones, and a team
    told which ones were checked learns nothing for another submission (any changed page draws
    the sample anew)."""
    digest = hashlib.sha256(
        json.dumps(truth.manifest["sha256"]["private"], sort_keys=True).encode()
    )
    digest.update(team.encode())
    names = sorted(restored)
    for name in names:
        digest.update(name.encode() + to_uint8(restored[name]).tobytes())
    return sorted(random.Random(digest.hexdigest()).sample(names, min(SAMPLE, len(names))))


def _verify_result(path: Path) -> dict:
    """The verification step's JSON result, read bounded and checked; raises ValueError."""
    result = json.loads(read_file(path, MAX_RESULT_BYTES))
    parameters, differences, errors = (
        result.get("parameters"), result.get("differences"), result.get("errors")
    ) if isinstance(result, dict) else (None, None, None)  # fmt: skip
    if not (
        (parameters is None or (isinstance(parameters, int) and not isinstance(parameters, bool)))
        and isinstance(differences, dict)
        and all(isinstance(v, float) and math.isfinite(v) for v in differences.values())
        and isinstance(errors, list)
        and all(isinstance(e, str) for e in errors)
    ):
        raise ValueError(f"{path.name}: not a verification result")
    return {"parameters": parameters, "differences": differences,
            "errors": [one_line(e) for e in errors[:10]]}  # fmt: skip


def verify_limits(limits: sandbox.Limits, notebook_seconds: float) -> sandbox.Limits:
    """The verification step's limits: never over the notebook's ``limits``, :data:`VERIFY_MB`
    of files, and :data:`VERIFY_SECONDS` or twice the notebook's own wall seconds, whichever is
    longer. The step restores at most :data:`SAMPLE` of the scans the notebook restored, the way
    it restored them (a self-ensemble of a large model on few test scans can take minutes), so
    twice the notebook's time covers it on the same machine."""
    seconds = max(VERIFY_SECONDS, math.ceil(2 * notebook_seconds))
    return dataclasses.replace(limits, wall_seconds=min(limits.wall_seconds, seconds),
                               cpu_seconds=min(limits.cpu_seconds, seconds),
                               file_mb=min(limits.file_mb, VERIFY_MB),
                               disk_mb=min(limits.disk_mb, VERIFY_MB))  # fmt: skip


def _verify(
    team: str, work: Path, public: Path, results: Path, limits: sandbox.Limits,
    isolation: str, uid: int, names: list[str], notebook_seconds: float,
) -> dict:  # fmt: skip
    """Run :mod:`restorelab.competition.verify` on ``work`` in the sandbox (from its own work
    folder ``results/verify/TEAM``, the team's work folder read-only, with
    :func:`verify_limits`) and return its checked result."""
    folder, log = results / "verify" / team, results / "logs" / f"{team}.verify.log"
    if folder.exists():
        remove_tree(folder)
    own = verify_limits(limits, notebook_seconds)
    with sandbox.work_folder(folder, own) as space:
        (folder / ".tmp").mkdir()  # its TMPDIR (torch needs one)
        result = folder / "result.json"
        # -I: no PYTHONPATH, no current folder; the grader's own restorelab goes first on the path
        start = (f"import sys, runpy; sys.path.insert(0, {str(_package_root())!r}); "
                 "runpy.run_module('restorelab.competition.verify', run_name='__main__')")  # fmt: skip
        command = [sys.executable, "-I", "-B", "-c", start, str(work), str(public), str(result),
                   "--names", *names]  # fmt: skip
        mounts = sandbox.Mounts(work=folder, read_only=(work, public, *sandbox.python_paths()))
        outcome = sandbox.run(command, mounts, own, log, isolation, uid, _environment(folder),
                              folder=space, cwd=Path("/"))  # fmt: skip
        if outcome.status != "ok":
            what = outcome.reason or _log_tail(log)
            return {"parameters": None, "differences": {},
                    "errors": [f"model check {outcome.status}: {what} ({_log_tail(log)})"]}  # fmt: skip
        try:
            return _verify_result(result)
        except (ValueError, TypeError) as error:
            return {"parameters": None, "differences": {}, "errors": [f"model check: {error}"]}


def _report(team: str, isolation: str, reason: str = "") -> dict:
    """A failed report of ``team`` (grading fills it in)."""
    return {"team": team, "status": "failed", "reason": reason, "score": None, "psnr": None,
            "metric": None, "parameters": None, "seconds": None, "isolation": isolation,
            "graded_at": time.strftime("%Y-%m-%d %H:%M:%S"), "images": {}, "errors": [],
            "thumbnail": None, "uid": None, "peak_mb": None, "enforcement": None,
            "warnings": []}  # fmt: skip


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
    """Grade one team (see module doc) and write its report; returns the report.

    The team's work folder ``results/work/TEAM`` is a :func:`~restorelab.competition.sandbox.
    work_folder` (a tmpfs of the disk limit, as root) for the time of the grading; its executed
    notebook is kept as ``results/logs/TEAM.ipynb``."""
    work, log = results / "work" / team, results / "logs" / f"{team}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (results / "thumbs" / f"{team}.png").unlink(missing_ok=True)  # a former grading's
    (results / "logs" / f"{team}.ipynb").unlink(missing_ok=True)
    report = _report(team, isolation)
    report["uid"] = uid  # the sandbox user that ran it (every process of it is gone at the end)
    if work.exists():  # a former grading's, or a crashed grader's
        remove_tree(work)
    with sandbox.work_folder(work, limits) as folder:
        _grade_in(folder, team, submissions, public, truth, results, limits, isolation, uid,
                  report)  # fmt: skip
    return _save(report, results)


def _grade_in(
    folder: sandbox.WorkFolder, team: str, submissions: Path, public: Path, truth: Truth,
    results: Path, limits: sandbox.Limits, isolation: str, uid: int, report: dict,
) -> None:  # fmt: skip
    """Fill in ``report``: run the team's notebook in ``folder``, score it, check its model."""
    work, log = folder.path, results / "logs" / f"{team}.log"
    try:
        notebook = _prepare(submissions / team, work, limits.disk_mb)
    except (ContractError, OSError, UntrustedFileError) as error:
        report["reason"] = str(error)
        return
    # -I: neither the current folder nor PYTHONPATH is on the runner's path, so a team's
    # papermill.py, json.py or restorelab/ cannot replace what it imports
    # started in "/", not in the work folder: the kernel alone runs there (--cwd)
    command = [sys.executable, "-I", "-B", "-m", "papermill", str(notebook),
               str(work / "executed.ipynb"), "-p", "DATA_DIR", str(public), "-p", "OUTPUT_DIR",
               str(work), "-k", KERNEL, "--cwd", str(work), "--log-output",
               "--no-progress-bar"]  # fmt: skip
    mounts = sandbox.Mounts(work=work, read_only=(public, *sandbox.python_paths()))
    outcome = sandbox.run(command, mounts, limits, log, isolation, uid, _environment(work),
                          folder=folder, cwd=Path("/"))  # fmt: skip
    report.update(seconds=round(outcome.seconds, 2), peak_mb=outcome.peak_mb,
                  enforcement=outcome.enforcement, warnings=list(outcome.warnings))  # fmt: skip
    _keep_executed(work / "executed.ipynb", results / "logs" / f"{team}.ipynb")
    if outcome.status != "ok":
        cell = _cell_error(work / "executed.ipynb") if outcome.status == "failed" else None
        report["reason"] = f"{outcome.status}: {cell or outcome.reason or _log_tail(log)}"
        if outcome.status == "failed" and not cell:
            report["reason"] += f" ({_log_tail(log)})"
        return
    scored, restored = score_outputs(work / "outputs", truth)
    report.update(metric=scored["metric"], images=scored["images"], errors=scored["errors"])
    first = truth.names[0]
    if first in restored:  # only pixels scoring accepted, never the folder read again
        report["thumbnail"] = _thumbnail(
            public / "test" / "scan" / first, restored[first], results / "thumbs" / f"{team}.png"
        )
    checked = _verify(team, work, public, results, limits, isolation, uid,
                      _sample(team, restored, truth), outcome.seconds)  # fmt: skip
    report["parameters"] = checked["parameters"]
    report["errors"] += checked["errors"]
    for name, difference in sorted(checked["differences"].items()):
        if difference > OUTPUT_TOLERANCE:
            report["errors"].append(
                f"outputs do not come from the submitted model: its restoration of {name} "
                f"differs from the submitted one by Y-MAE {difference:.2f} (tolerance "
                f"{OUTPUT_TOLERANCE}; the check restores in float32, as model.json's "
                '"inference" declares)'
            )
    if report["errors"]:
        report["reason"] = "rejected: " + "; ".join(report["errors"][:3])
        if len(report["errors"]) > 3:
            report["reason"] += f"; ... ({len(report['errors'])} problems)"
        return
    report.update(status="ok", score=scored["score"], psnr=scored["psnr"])


def _keep_executed(executed: Path, target: Path) -> None:
    """Copy the executed notebook out of the work folder (read bounded; nothing if unreadable)."""
    try:
        target.write_bytes(read_file(executed, MAX_NOTEBOOK_BYTES))
    except UntrustedFileError:
        pass


def _save(report: dict, results: Path) -> dict:
    """Write ``report`` as ``results/teams/TEAM.json``, after every text a team can put into it
    (file names, error messages of its code) went through :func:`one_line`."""
    report["reason"] = one_line(report["reason"], REASON_CHARS)
    report["errors"] = [one_line(error) for error in report["errors"]]
    path = results / "teams" / f"{report['team']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
    return report


def _check_closed(private: Path) -> None:
    """The rlimits fallback mounts nothing away: permissions alone keep the submissions (run as
    another user) out of the private folder, so some folder on its path must be closed to
    other users (no ``o+x``: nothing below it can be reached, whatever its names)."""
    path = private.resolve()
    if all(os.stat(folder).st_mode & stat.S_IXOTH for folder in (path, *path.parents)):
        raise PermissionError(
            f"{private}: other users can reach it, and the rlimits fallback runs submissions as "
            f"another user: chmod 700 {private} (or install bubblewrap)"
        )


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
    if mode == "rlimits":
        _check_closed(Path(private))
        with sandbox.sandbox_user() as uid:  # refuses before any team when it would be root
            sandbox.fallback_uid(uid)
    limits = limits or sandbox.Limits()

    def one(team: str) -> dict:
        try:
            with sandbox.sandbox_user() as uid:
                return grade_team(team, submissions, public, truth, results, limits, mode, uid)
        except Exception as error:  # a grader bug fails this team, never the class
            return _save(
                _report(
                    team, mode, f"grader error: {type(error).__name__}: {one_line(str(error))}"
                ),
                results,
            )

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        reports = list(pool.map(one, chosen))
    leaderboard.write(results)
    return reports
