"""Grading that holds against a hostile class: the grader is never blocked, fed or fooled.

The fast tests check the pieces without a sandbox: the bounded reader on a FIFO and a link, an
image bomb refused from its header, a grader error that becomes a row, reports that render
safely, team reports of the wrong type. One slow test grades a class of the ``g_*`` fixtures
(a FIFO for the executed notebook, ``outputs`` linked to the private folder, a declared-model
bomb, image bombs, modules that shadow the runner's, outputs the model did not make (a contrast
stretch, and pages one level brighter, which the old tolerance of 1.0 let through), HTML in
the reason) with the honest "do nothing" team, two at a time, in the bubblewrap sandbox.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SANDBOX_USERS
from PIL import Image, ImageFile

from restorelab.cli import main
from restorelab.competition import (
    Limits,
    Truth,
    grade_class,
    leaderboard,
    make,
    sandbox,
    score,
    synthetic_pairs,
    untrusted,
)
from restorelab.competition import grade as grade_module
from restorelab.competition.sandbox import bwrap_problem, running_processes
from restorelab.competition.score import decode_checked, score_folder, score_outputs
from restorelab.competition.untrusted import UntrustedFileError, copy_tree, read_file
from restorelab.io import ImageReadError, decode_image, read_image, to_uint8, write_image

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "competition"))
import classroom  # noqa: E402  (the fixture folder's builder)

pytestmark = SANDBOX_USERS
LIMITS = Limits(wall_seconds=60, cpu_seconds=15, memory_mb=1500, processes=64, file_mb=40,
                disk_mb=64)  # fmt: skip
SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_comp")
    make(synthetic_pairs(6, 64, page_seed=5), root, 2, seed=0, source="test")
    return root


def _bomb_png(side: int) -> bytes:
    """A PNG of about 100 bytes whose header declares ``side`` x ``side`` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(side + 1))) + chunk(b"IEND", b""))  # fmt: skip


def test_a_fifo_or_a_link_never_blocks_or_leaks(tmp_path):
    os.mkfifo(tmp_path / "executed.ipynb")  # no writer: a blocking open would hang here
    start = time.monotonic()
    with pytest.raises(UntrustedFileError, match=r"executed.ipynb: a FIFO \(named pipe\)"):
        read_file(tmp_path / "executed.ipynb", 1 << 20)
    assert time.monotonic() - start < 1
    (tmp_path / "secret").write_bytes(b"private")
    os.symlink(tmp_path / "secret", tmp_path / "link")
    with pytest.raises(UntrustedFileError, match="link: a symbolic link"):
        read_file(tmp_path / "link", 1 << 20)
    (tmp_path / "big").write_bytes(b"x" * 100)
    with pytest.raises(UntrustedFileError, match="big: 100 bytes, over"):
        read_file(tmp_path / "big", 99)
    assert read_file(tmp_path / "big", 10, last=True) == b"x" * 10  # a log's tail


def test_a_team_folder_is_copied_without_following_links_and_within_bounds(tmp_path):
    deep = tmp_path / "tree"
    (deep / "a" / "b" / "c").mkdir(parents=True)
    (deep / "a" / "b" / "weights").write_bytes(b"w" * 100)
    os.symlink(tmp_path, deep / "a" / "loop")  # skipped, never followed
    os.mkfifo(deep / "a" / "pipe")  # skipped, never opened
    copy_tree(deep, tmp_path / "copy", 1000, 1000)
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert copied == ["a", "a/b", "a/b/c", "a/b/weights"]
    assert (tmp_path / "copy" / "a" / "b" / "weights").read_bytes() == b"w" * 100
    refusals = [
        ({"max_depth": 1}, "tree/a/b: deeper than 1 levels"),
        ({"max_entries": 2}, "tree: over 2 entries"),
        ({"file_limit": 99}, "a/b/weights: 100 bytes, over"),
        ({"total_limit": 99}, r"tree: over [0-9.e-]+ MB in all \(refused\)"),
    ]
    held = _open_descriptors()
    for attempt, (limits, message) in enumerate(refusals):
        arguments = {"file_limit": 1000, "total_limit": 1000, **limits}
        with pytest.raises(UntrustedFileError, match=message):
            copy_tree(deep, tmp_path / f"refused{attempt}", **arguments)
    assert _open_descriptors() == held  # a refusal mid-walk closes every folder it opened


def _open_descriptors() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_folder_swapped_for_a_link_during_the_copy_copies_nothing_of_its_target(
    tmp_path, monkeypatch, when
):
    """A team that can write its folder while it is graded swaps ``sub`` for a link to the
    private truth just before the grader opens it (refused), or just after (the copy goes on
    from the folder it opened: the team's own files)."""
    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "page.png").write_bytes(b"the truth")
    team = tmp_path / "team"
    (team / "sub").mkdir(parents=True)
    (team / "sub" / "page.png").write_bytes(b"mine")
    opened = untrusted.open_folder

    def swap_then_open(path, folder_fd=None, name=""):
        if when == "before" and str(path) == "sub":
            (team / "sub").rename(tmp_path / "moved")
            os.symlink(secret, team / "sub")
        descriptor = opened(path, folder_fd, name)
        if when == "after" and str(path) == "sub":
            (team / "sub").rename(tmp_path / "moved")
            os.symlink(secret, team / "sub")
        return descriptor

    monkeypatch.setattr(untrusted, "open_folder", swap_then_open)
    if when == "before":
        with pytest.raises(UntrustedFileError, match="sub: not a folder"):
            copy_tree(team, tmp_path / "copy", 1000, 1000)
    else:
        copy_tree(team, tmp_path / "copy", 1000, 1000)
    copies = [p.read_bytes() for p in (tmp_path / "copy").rglob("*") if p.is_file()]
    assert b"the truth" not in copies and copies == ([] if when == "before" else [b"mine"])


def test_an_image_bomb_is_refused_from_its_header(comp, tmp_path, monkeypatch):
    truth = Truth(comp / "private")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name in truth.names:
        (outputs / name).write_bytes(_bomb_png(30000))
    assert (outputs / truth.names[0]).stat().st_size < 200

    def no_decoding(self):
        raise AssertionError("pixels of a bomb were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    report = score_folder(outputs, truth)
    assert report["status"] == "failed"
    assert all("declares too many pixels" in error for error in report["errors"]), report
    (outputs / truth.names[0]).write_bytes(_bomb_png(80))  # within Pillow's limit: by size
    errors = score_folder(outputs, truth)["errors"]
    assert f"{truth.names[0]}: 80x80 pixels, expected 64x64" in errors


def test_postscript_named_png_never_reaches_ghostscript(monkeypatch):
    """Pillow picks its decoder by content: a ".png" holding PostScript (of the right declared
    size) would run Ghostscript, as root, outside the sandbox. Only IMAGE_SUFFIXES' formats are
    tried, so it is not an image, for the grader and for read_image alike."""
    from PIL import EpsImagePlugin

    def ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n{ } loop\n"
    with pytest.raises(ImageReadError, match=r"page_0001.png: not an image \(UnidentifiedImage"):
        decode_checked(data, "page_0001.png", (64, 64))
    with pytest.raises(ImageReadError, match="page.png: cannot read the image"):
        decode_image(data, source="page.png")


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding():
    """Each progressive scan decodes the whole page again: a small file of thousands of scans
    would hold the scorer (and every team waiting on its lock) for minutes."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(buffer, "JPEG", progressive=True)
    page = buffer.getvalue()
    assert decode_checked(page, "page_0001.jpg", (64, 64)).shape == (3, 64, 64)  # ~10 scans
    end = page.rindex(b"\xff\xd9")  # scans of no data before the end marker
    bomb = page[:end] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 5000 + page[end:]
    with pytest.raises(ImageReadError, match=r"page_0001.jpg: a JPEG of 50\d\d scans"):
        decode_checked(bomb, "page_0001.jpg", (64, 64))


def test_a_grader_error_is_the_teams_row_and_the_board_is_written(comp, tmp_path, monkeypatch):
    submissions = classroom.build(tmp_path / "submissions", ("raises", "bravo"), {})

    def broken(team_dir, work, disk_mb):
        if team_dir.name == "raises":
            raise RuntimeError(f"grader bug while preparing {SCRIPT} | x")
        raise KeyError("another bug")

    monkeypatch.setattr(grade_module, "_prepare", broken)
    monkeypatch.setattr(sandbox, "fallback_uid", lambda uid: uid)  # nothing runs: _prepare fails
    reports = grade_class(submissions, comp / "public", comp / "private", tmp_path / "results",
                          LIMITS, "rlimits", 2)  # fmt: skip
    reasons = {report["team"]: report["reason"] for report in reports}
    assert reasons["raises"].startswith("grader error: RuntimeError: grader bug while preparing")
    assert reasons["bravo"] == "grader error: KeyError: 'another bug'"
    board = (tmp_path / "results" / "leaderboard.csv").read_text().splitlines()
    assert [line.split(",")[1:3] for line in board[1:]] == [
        ["bravo", "failed"],
        ["raises", "failed"],
    ]
    page = (tmp_path / "results" / "leaderboard.html").read_text()
    assert SCRIPT not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    markdown = (tmp_path / "results" / "leaderboard.md").read_text()
    assert r"\<script\>alert('pwned')\</script\> \| x" in markdown
    assert all(
        line.count(" | ") == len(leaderboard.COLUMNS) - 1 for line in markdown.splitlines()[4:]
    )


def test_hostile_file_names_neither_break_nor_forge_the_leaderboard(comp, tmp_path):
    """A notebook names its output files: bytes that are not UTF-8 (which once made every later
    leaderboard write raise), terminal escapes that erase and rewrite the instructor's screen or
    set the clipboard, a bidi override, a spreadsheet formula. Scoring names them in its errors;
    the report keeps a safe form of each, and every leaderboard file is written."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    names = [b"\xff.png", b"\x1b[1A\x1b[2Kalpha ok\x1b]52;c;cHduZWQ=\x07.png",
             "\u202egnp.exe".encode(), b"=HYPERLINK(1).png"]  # fmt: skip
    for name in names:
        open(os.path.join(bytes(outputs), name), "wb").close()
    scored, _ = score_outputs(outputs, Truth(comp / "private"))
    report = grade_module._report("evil", "rlimits")
    report.update(errors=scored["errors"], reason=f"=1+1 {scored['errors'][0]}")
    results = tmp_path / "results"
    saved = grade_module._save(report, results)
    paths = leaderboard.write(results)
    extra = sorted(error.split(": extra file")[0] for error in saved["errors"] if "extra" in error)
    assert extra == ["=HYPERLINK(1).png", "\\udcff.png", "alpha ok]52;c;cHduZWQ=.png", "gnp.exe"]
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert not any(c in text for c in "\x1b\x07\u202e"), path
    cells = next(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert cells["reason"].startswith("'=1+1 ")  # a spreadsheet shows it as text


def test_a_forged_executed_notebook_gives_a_short_reason_or_none(tmp_path):
    """The kernel can write executed.ipynb itself, then kill papermill: its error cell is read
    for the reason, but only an integer cell number and a bounded parse of it."""
    executed = tmp_path / "executed.ipynb"
    error = {"output_type": "error", "ename": "ValueError", "evalue": "\x1b[31mbad\u202e input"}
    cell = {"cell_type": "code", "execution_count": "9" * 1000, "outputs": [error]}
    executed.write_text(json.dumps({"cells": [cell]}))
    assert grade_module._cell_error(executed) == "In [?]: ValueError: bad input"
    executed.write_text(json.dumps({"cells": [{**cell, "execution_count": 7}]}))
    assert grade_module._cell_error(executed) == "In [7]: ValueError: bad input"
    executed.write_text("[" * 100_000 + "]" * 100_000)  # deeper than the JSON parser recurses
    assert grade_module._cell_error(executed) is None
    executed.write_text(
        json.dumps({"cells": [cell], "pad": "x" * grade_module.MAX_PARSED_NOTEBOOK_BYTES})
    )
    assert grade_module._cell_error(executed) is None  # too big to parse: the log tail says it


def test_the_fallback_refuses_a_private_folder_other_users_can_reach(comp, tmp_path):
    """Without bwrap nothing is mounted away: a truth copied with its modes lost (0755, by git
    or a zip) under folders all open to others would be open to the submissions, so grading
    does not start. One closed folder on the path is enough."""
    submissions = tmp_path / "submissions"
    (submissions / "bravo").mkdir(parents=True)
    base = Path(tempfile.mkdtemp())  # under /tmp: every folder above it open (pytest's is 0700)
    try:
        base.chmod(0o755)
        private = base / "private"
        shutil.copytree(comp / "private", private)
        private.chmod(0o755)
        with pytest.raises(PermissionError, match=f"{private}: other users can reach it"):
            grade_class(submissions, comp / "public", private, tmp_path / "results", LIMITS,
                        "rlimits")  # fmt: skip
        for closed in (private, base):
            closed.chmod(0o700)
            grade_module._check_closed(private)
            closed.chmod(0o755)
    finally:
        shutil.rmtree(base)


def test_the_checked_pages_follow_the_submission_not_only_the_team(comp):
    """The verification step re-derives a sample of pages from the model. A re-grade of the same
    submission checks the same pages; a team told which pages were checked (its rejection
    names them) that hand-edits others changes its pixels, and so the sample."""
    truth = Truth(comp / "private")
    generator = torch.Generator().manual_seed(0)
    restored = {f"page_{i:04d}.png": torch.rand(3, 8, 8, generator=generator) for i in range(20)}
    checked = grade_module._sample("alpha", restored, truth)
    assert len(checked) == grade_module.SAMPLE and set(checked) <= set(restored)
    assert grade_module._sample("alpha", dict(restored), truth) == checked
    drawn = set()
    for page in sorted(set(restored) - set(checked))[:5]:  # edit one page the check skipped
        edited = {**restored, page: (restored[page] + 1 / 255).clamp(0, 1)}
        drawn.add(tuple(grade_module._sample("alpha", edited, truth)))
    assert drawn - {tuple(checked)}  # other pages are checked


def test_report_fields_of_the_wrong_type_name_their_file(tmp_path, capsys):
    teams = tmp_path / "teams"
    teams.mkdir()
    report = {"team": "alpha", "status": "ok", "score": "12.5", "psnr": None, "parameters": 10,
              "seconds": 3.0, "reason": "", "thumbnail": None}  # fmt: skip
    (teams / "alpha.json").write_text(json.dumps(report))
    assert main(["competition", "leaderboard", str(tmp_path)]) != 0
    error = capsys.readouterr().err
    assert "alpha.json: score must be a number or null, got '12.5'" in error
    assert "Unknown format code" not in error
    (teams / "alpha.json").write_text("{broken")
    with pytest.raises(ValueError, match="alpha.json: not a readable team report"):
        leaderboard.write(tmp_path)


def test_a_broken_manifest_names_its_file(comp, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "manifest.json").write_text('{"test": ["a.png"]}')
    with pytest.raises(ValueError, match=r"manifest.json: not a competition manifest \(KeyError"):
        Truth(private)


def test_a_csv_value_out_of_range_is_an_error_not_an_infinite_score(comp, tmp_path, capsys):
    truth = Truth(comp / "private")
    rows = ["Image File,Y Channel Value"] + [f"{name},-1e308" for name in truth.names]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    report = score(tmp_path / "a.csv", truth)
    assert report["status"] == "failed" and report["score"] is None
    assert main(["competition", "score", str(tmp_path / "a.csv"), "--private",
                 str(comp / "private")]) == 1  # fmt: skip
    printed = capsys.readouterr().out
    assert "score inf" not in printed and "'-1e308' is not a plain decimal" in printed
    rows = ["Image File,Y Channel Value"] + [f"{name},1_000" for name in truth.names]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    assert "'1_000' is not a plain decimal" in score(tmp_path / "b.csv", truth)["errors"][0]


def test_an_rgba_output_gets_a_hint_it_can_follow(comp, tmp_path):
    truth = Truth(comp / "private")
    outputs = tmp_path / "outputs"
    for name in truth.names:
        write_image(outputs / name, torch.rand(4, 64, 64))
    errors = score_folder(outputs, truth)["errors"]
    assert errors and all("save the restored image as RGB or grey" in e for e in errors), errors
    assert not any("--alpha" in error for error in errors)


def test_the_model_check_gets_the_time_its_restorations_took_in_the_notebook():
    verify_limits, least = grade_module.verify_limits, grade_module.VERIFY_SECONDS
    limits = Limits(wall_seconds=1800, cpu_seconds=3600, file_mb=512, disk_mb=2048)
    quick = verify_limits(limits, 12.5)
    assert (quick.wall_seconds, quick.cpu_seconds) == (least, least)
    assert (quick.file_mb, quick.disk_mb) == (grade_module.VERIFY_MB, grade_module.VERIFY_MB)
    assert quick.memory_mb == limits.memory_mb and quick.processes == limits.processes
    slow = verify_limits(limits, 700.2)  # a self-ensembled Restormer on three test scans
    assert (slow.wall_seconds, slow.cpu_seconds) == (1401, 1401)
    longest = verify_limits(limits, 1799)
    assert (longest.wall_seconds, longest.cpu_seconds) == (1800, 3598)  # never over the limits
    small = verify_limits(Limits(wall_seconds=60, cpu_seconds=15), 10)
    assert (small.wall_seconds, small.cpu_seconds) == (60, 15)


# the hostile class: team -> (status, what the reason starts with, a phrase it holds)
EXPECTED = {
    "g_fifo": ("failed", "failed:", "exited with status"),
    "g_outlink": ("failed", "rejected:", "outputs: not a folder"),
    "g_bomb": ("failed", "rejected:", "parameters, over the 10,000,000 limit"),
    "g_imgbomb": ("failed", "rejected:", "declares too many pixels"),
    "g_shadow": ("ok", "", ""),
    "g_liar": ("failed", "rejected:", "outputs do not come from the submitted model"),
    "g_brighter": ("failed", "rejected:", "outputs do not come from the submitted model"),
    "g_html": ("failed", "failed: In [", SCRIPT),
}
assert set(EXPECTED) == set(classroom.GRADING_HOSTILE)


@pytest.mark.slow
def test_a_hostile_class_is_graded_by_itself(tmp_path):
    problem = bwrap_problem()
    if problem:
        pytest.skip(f"the bubblewrap sandbox cannot run here: {problem}")
    comp = tmp_path / "comp"
    make(synthetic_pairs(8, 64, page_seed=3), comp, 3, seed=0, source="test")
    private = comp / "private"
    submissions = classroom.build(tmp_path / "submissions",
                                  ("bravo", *classroom.GRADING_HOSTILE),
                                  {"PRIVATE": str(private)})  # fmt: skip
    grow_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    reports = grade_class(submissions, comp / "public", private, tmp_path / "results", LIMITS,
                          "bwrap", 2)  # fmt: skip
    assert time.monotonic() - start < 240  # it finished by itself, well inside the limits
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - grow_before) / 1024
    assert grown_mb < 300  # the declared bomb was never built here (terabytes if it were)
    graded = {report["team"]: report for report in reports}
    for team, (status, starts, phrase) in EXPECTED.items():
        report = graded[team]
        assert report["status"] == status, (team, report["reason"])
        assert report["reason"].startswith(starts) and phrase in report["reason"], (team, report)
    # the honest teams (and the shadowing one, which is the same model) score as graded alone
    alone = grade_class(submissions, comp / "public", private, tmp_path / "alone", LIMITS,
                        "bwrap", 1, ["bravo"])[0]  # fmt: skip
    assert alone["status"] == "ok" and graded["bravo"]["score"] == alone["score"]
    assert graded["g_shadow"]["score"] == alone["score"]
    assert graded["bravo"]["images"] == alone["images"]
    # no byte of the private folder reached results/: no copy of a clean page, no thumbnail
    results = tmp_path / "results"
    assert not (results / "thumbs" / "g_outlink.png").exists()
    assert graded["g_outlink"]["thumbnail"] is None
    secrets = [p.read_bytes() for p in (private / "test" / "clean").iterdir()]
    for path in results.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path
    assert not any((results / "work").iterdir())  # every work folder is gone (tmpfs unmounted)
    assert "outputs" in graded["g_outlink"]["reason"]  # it did try, and scoring refused the link
    cleans = [to_uint8(read_image(path)) for path in (private / "test" / "clean").iterdir()]
    thumbs = sorted((results / "thumbs").iterdir())
    assert [path.stem for path in thumbs] == [
        "bravo",
        "g_bomb",
        "g_brighter",
        "g_liar",
        "g_shadow",
    ]  # accepted pages
    for path in thumbs:  # the restored half never shows a clean page
        restored = np.asarray(Image.open(path))[:, -64:]
        assert not any(np.array_equal(restored, clean) for clean in cleans), path
    # the reports render safely
    page = (results / "leaderboard.html").read_text()
    assert SCRIPT not in page and "&lt;script&gt;" in page
    assert r"\<script\>" in (results / "leaderboard.md").read_text()
    # no process of a sandbox user is left
    uids = {report["uid"] for report in [*reports, alone]} - {None}
    assert uids and all(running_processes(uid) == [] for uid in uids)
