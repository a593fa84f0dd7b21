"""Comet experiment tracking for the Trainer, only when asked for.

Taught in chapter 8 (the student project tracked its runs with Comet). TensorBoard and
``log.csv`` stay the course's defaults; ``TrainConfig(comet={...})`` adds Comet beside them:

* ``comet={"project_name": "inpainter"}``: an online experiment; the API key comes from the
  ``COMET_API_KEY`` environment variable or ``~/.comet.config`` (``comet_ml``'s own rules);
* ``comet={"offline": True}``: nothing is sent; at the end of ``fit`` Comet writes a zip archive
  into ``offline_directory`` (by default ``out_dir/comet``), which ``comet upload`` sends later.

Other keys go to ``comet_ml.Experiment`` / ``OfflineExperiment`` as they are. Every log row is
logged as metrics ``{kind}_{name}`` (``train_loss``, ``val_psnr`` ...) at its step, and the
TrainConfig as parameters. Needs the optional ``comet_ml`` package: ``pip install
'restorelab[comet]'``.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from restorelab.train.config import TrainConfig

# what comet_ml collects by default beyond the metrics: off, so runs stay small and private
_QUIET = {
    "auto_output_logging": False, "log_code": False, "log_git_metadata": False,
    "log_git_patch": False, "log_env_details": False, "log_env_gpu": False,
    "log_env_host": False, "log_env_cpu": False, "display_summary_level": 0,
}  # fmt: skip


def start_experiment(config: TrainConfig, out_dir: Path | None):
    """A Comet experiment for a run of ``config`` writing to ``out_dir``, its parameters logged."""
    try:
        import comet_ml
    except ImportError as error:
        raise ImportError(
            "TrainConfig(comet=...) needs comet_ml: pip install 'restorelab[comet]' (or leave "
            "comet empty: TensorBoard and log.csv are written anyway)"
        ) from error
    settings = {**_QUIET, **config.comet}
    if settings.pop("offline", False):
        default = Path(out_dir) / "comet" if out_dir is not None else tempfile.mkdtemp()
        folder = Path(settings.pop("offline_directory", default))
        folder.mkdir(parents=True, exist_ok=True)
        experiment = comet_ml.OfflineExperiment(offline_directory=str(folder), **settings)
    else:
        experiment = comet_ml.Experiment(**settings)
    parameters = {k: v for k, v in asdict(config).items() if k not in ("comet", "extra")}
    experiment.log_parameters({k: str(v) if isinstance(v, (tuple, list)) else v
                               for k, v in parameters.items()})  # fmt: skip
    return experiment
