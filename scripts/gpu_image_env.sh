#!/usr/bin/env bash
# A CPU stand-in for the GPU machine's Python (/work/.library/device/KINDS.md): Python 3.12,
# torch 2.11 and the versions the image was seen with, and none of the packages it lacks
# (lpips, kornia, datasets, bm3d, hdbscan, nbformat, jupyter). restorelab is not installed in
# it: gpu_session.sh runs the checkout, as there. A dry run in it finds what the image lacks
# before a GPU call is spent on it (about 2 minutes and 3 GB; torch comes with its CUDA libraries):
#   bash scripts/gpu_image_env.sh /tmp/gpuenv
#   PYTHON=/tmp/gpuenv/bin/python OUT=/tmp/dry bash scripts/gpu_session.sh --cpu-dry-run
set -euo pipefail
env_dir=${1:?give the folder of the new environment}
python=${GPU_IMAGE_PYTHON:-}
for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    [ -n "$python" ] && break
    "$candidate" -c '' 2>/dev/null && python=$candidate  # a pyenv shim may name one it lacks
done
[ -n "$python" ] || { echo "gpu_image_env.sh needs Python 3.12: set GPU_IMAGE_PYTHON"; exit 2; }
"$python" -m venv "$env_dir"
"$env_dir/bin/pip" install -q torch==2.11.0 torchvision==0.26.0 numpy==2.5.2 safetensors==0.8.0 \
    scikit-image scipy matplotlib tqdm tensorboard pyarrow pillow psutil opencv-python-headless \
    scikit-learn pandas pytest
"$env_dir/bin/python" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
