"""The instructor's side of the descanning competition: make, score, grade, leaderboard.

Taught in the course appendix ("Running the competition"); chapter 9 is the students' side.

* :func:`make` (:mod:`.make`): a public folder (train pairs, test scans, a sample submission)
  and a private one (test cleans, a manifest with checksums) from paired images;
* :func:`score` (:mod:`.score`): a folder of restored images or the 2023 CSV against the private
  folder, every problem a named error in the report;
* :func:`grade_class` (:mod:`.grade`): each team's notebook run with papermill in the sandbox
  (:mod:`.sandbox`), its outputs scored, its model checked against the contract
  (:mod:`.contract`) and some outputs re-derived from it in a second sandboxed step
  (:mod:`.verify`), every file of a team read by :mod:`.untrusted`, the leaderboard
  (:mod:`.leaderboard`) rewritten;
* :func:`write_submission`, :func:`write_mean_y_csv`: the students' side (chapter 9), a
  submission folder by the contract and the 2023 CSV.

Only :mod:`restorelab.cli` and the notebooks import this package.
"""

from restorelab.competition.contract import (
    OUTPUT_TOLERANCE,
    ContractError,
    check_model,
    write_submission,
)
from restorelab.competition.grade import grade_class
from restorelab.competition.leaderboard import write as write_leaderboard
from restorelab.competition.make import PARAMETER_LIMIT, make, synthetic_pairs, write_mean_y_csv
from restorelab.competition.sandbox import Limits
from restorelab.competition.score import Truth, describe, score

__all__ = [
    "OUTPUT_TOLERANCE",
    "PARAMETER_LIMIT",
    "ContractError",
    "Limits",
    "Truth",
    "check_model",
    "describe",
    "grade_class",
    "make",
    "score",
    "synthetic_pairs",
    "write_leaderboard",
    "write_mean_y_csv",
    "write_submission",
]
