"""Check a team's model and re-derive some of its outputs, in the sandbox (``python -I -m``).

Taught in the course appendix ("Running the competition"). After a team's notebook ran, the
grader runs this module in a second sandboxed step, from a folder the team does not control,
with the team's work folder read-only, as ``python -I`` (no current folder or PYTHONPATH on the
path) running this module with the grader's ``restorelab`` first on the path and the arguments
``WORK PUBLIC RESULT --names a.png b.png``.

It builds the model ``WORK/model.json`` declares, counts its parameters and loads
``WORK/model.safetensors`` or ``WORK/model.pt`` (:func:`~restorelab.competition.contract.load_model`),
restores the named test scans ``PUBLIC/test/scan/NAME`` with it the way ``model.json``'s
``"inference"`` declares (tiles, self-ensemble; fp32 on the CPU), quantised to 8 bits as
:func:`~restorelab.competition.contract.write_submission` writes them, and measures the Y-MAE
(8-bit scale) between each and the team's ``WORK/outputs/STEM.*``. It writes ``RESULT``
(JSON): ``{"parameters": int | None, "differences": {name: float}, "errors": [str]}``. The
grader reads it with the bounded reader and rejects a team whose difference is over
:data:`restorelab.competition.contract.OUTPUT_TOLERANCE`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from restorelab.competition.contract import ContractError, load_model, one_line
from restorelab.competition.score import decode_checked
from restorelab.competition.untrusted import (
    MAX_ENTRIES,
    UntrustedFileError,
    open_folder,
    read_file,
)
from restorelab.infer import predict
from restorelab.io import ImageReadError, is_image_name, read_image, to_tensor, to_uint8
from restorelab.metrics import y_mae


def verify(work: Path, public: Path, names: list[str]) -> dict:
    """The result described in the module doc for the team folder ``work``."""
    result: dict = {"parameters": None, "differences": {}, "errors": []}
    try:
        model, result["parameters"], card = load_model(work)
    except ContractError as error:
        result["errors"].append(str(error))
        return result
    except Exception as error:  # whatever the declared model does while it is built
        result["errors"].append(f"model: {type(error).__name__}: {one_line(str(error))}")
        return result
    if not names:
        return result
    try:
        outputs = open_folder(work / "outputs")
    except UntrustedFileError as error:
        result["errors"].append(str(error))
        return result
    try:
        by_stem = {}
        with os.scandir(outputs) as entries:
            for count, entry in enumerate(entries):
                stem = os.path.splitext(entry.name)[0]
                if count >= MAX_ENTRIES:
                    raise UntrustedFileError(f"outputs: over {MAX_ENTRIES} entries (refused)")
                if is_image_name(entry.name):
                    by_stem[stem] = min(by_stem.get(stem, entry.name), entry.name)
        for name in names:
            scan = read_image(public / "test" / "scan" / name, "rgb")
            entry = by_stem.get(Path(name).stem)
            if entry is None:
                result["errors"].append(f"outputs: no restored image of {name}")
                continue
            size = (scan.shape[-2], scan.shape[-1])
            data = read_file(entry, 64 * size[0] * size[1] + (1 << 20), outputs)
            submitted = decode_checked(data, entry, size)
            own = to_tensor(to_uint8(predict(model, scan, **asdict(card.inference))))
            result["differences"][name] = y_mae(own, submitted)
    except (UntrustedFileError, ImageReadError, ValueError, RuntimeError) as error:
        result["errors"].append(f"outputs: {type(error).__name__}: {one_line(str(error))}")
    finally:
        os.close(outputs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="the team's work folder (read-only)")
    parser.add_argument("public", type=Path, help="the public competition folder")
    parser.add_argument("result", type=Path, help="where the JSON result goes")
    parser.add_argument("--names", nargs="*", default=[], help="test scans to re-derive")
    args = parser.parse_args(argv)
    result = verify(args.work, args.public, args.names)
    tmp = args.result.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
