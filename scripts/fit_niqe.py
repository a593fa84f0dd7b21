"""Fit NIQE's pristine model on the course's own training photos (restorelab.niqe, chapter 7).

    python scripts/fit_niqe.py            # writes restorelab/weights/niqe_pristine.safetensors
                                          # and its card niqe_pristine.json

Offline and in a few seconds: the photos ship with scikit-image (restorelab.data.embedded). NIQE's
pristine model describes undistorted *natural scenes*, so only the training photos of natural
scenes are used; the others are left out for the reason PRISTINE_EXCLUDED gives. The validation
photos stay out: tests/test_niqe.py scores them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy
import skimage
import torch

from restorelab.data.embedded import LEAKS_INTO_BENCHMARKS, TRAIN_PHOTOS, load_photo
from restorelab.io import file_sha256, to_tensor
from restorelab.niqe import PRISTINE_PATH, PristineModel, fit_pristine

PRISTINE_EXCLUDED = {
    **{name: f"benchmark leak: {image}" for name, image in LEAKS_INTO_BENCHMARKS.items()},
    "clock": "motion-blurred on purpose (scikit-image's description)",
    "hubble_deep_field": "astronomy: black sky, not a natural scene",
    "immunohistochemistry": "microscopy, not a natural scene",
    "cell": "microscopy, not a natural scene",
    "retina": "fundus photograph, not a natural scene",
}
PRISTINE_PHOTOS = tuple(name for name in TRAIN_PHOTOS if name not in PRISTINE_EXCLUDED)


def fit(names: tuple[str, ...] = PRISTINE_PHOTOS) -> PristineModel:
    """The pristine model of the embedded photos ``names``, with its provenance as metadata."""
    model = fit_pristine(
        (to_tensor(load_photo(name)) for name in names),
        note="restorelab's embedded training photos of natural scenes (scikit-image)",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    model.metadata.update(
        photos=",".join(names),
        excluded="; ".join(f"{name}: {why}" for name, why in PRISTINE_EXCLUDED.items()),
        date=datetime.date.today().isoformat(),
        command="python scripts/fit_niqe.py",
        commit=commit or "unknown",
        versions=f"scikit-image {skimage.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, torch {torch.__version__}",
    )
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PRISTINE_PATH, help="safetensors file to write")
    args = parser.parse_args(argv)
    model = fit()
    path = model.save(args.out)
    card = {"name": path.stem, **model.metadata, "note": model.note, "sha256": file_sha256(path)}
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{path}: {model.metadata['patches']} patches of {len(PRISTINE_PHOTOS)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
