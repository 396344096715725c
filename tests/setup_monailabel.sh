#!/usr/bin/env bash
# Makes the virtual environment in which tests/test_monailabel.py starts a real MONAI Label
# server: python tests/setup_monailabel.sh [VENV] (default .venv-monailabel at the repository root).
#
# monailabel 0.8.5 pins numpy < 2 (through numpymaxflow and pydicom-seg) and wants torchvision and
# sam2, none of which its server needs to serve and train this bundle; beside this project's stack
# (numpy 2) it installs only with --no-deps. So: torch first (the CPU build on these machines'
# disk), the project's runtime dependencies (not the project: the server runs the exported
# bundle's own copy of `networks`), then monailabel without its pins, then what its server and its
# monaibundle app import, pydicom-seg again without its numpy pin (it needs pydicom 2, and so do the
# dicomweb-client and pynetdicom releases below).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$repo/.venv-monailabel}"

python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q torch==2.13.0
# the dependencies listed in pyproject.toml, read with the standard library
mapfile -t deps < <("$py" -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"], sep="\n")' "$repo/pyproject.toml")
"$py" -m pip install -q "${deps[@]}"
"$py" -m pip install -q --no-deps "monailabel==0.8.5" "pydicom-seg>=0.4.1"
"$py" -m pip install -q "fastapi>=0.110.2" "uvicorn>=0.29.0" "pydantic>=2.7.0" "pydantic-settings>=2.2.1" \
    "python-dotenv>=1.0.1" "python-multipart>=0.0.9" "httpx>=0.27.0" "schedule>=1.2.1" "dicomweb-client[gcp]>=0.59.1,<0.60" \
    "timeloop>=1.0.2" "expiringdict>=1.2.2" "expiring_dict>=1.1.0" "cachetools>=5.3.3" "watchdog>=4.0.0" \
    "pydicom>=2.4.4,<3" "pynetdicom>=2.0.2,<3" "pynrrd>=1.0.0" "girder-client>=3.2.3" "einops>=0.7.0" "passlib>=1.7.4" \
    "pyjwt>=2.8.0" "bcrypt>=4.1.2" "shapely>=2.0.4" "requests-toolbelt>=1.0.0" "jsonschema" "SimpleITK" \
    "scikit-learn" "scipy" "psutil" "itk" "scikit-image"
# MONAI Label's post-processing module imports torchvision.utils (pure Python). The registry offers
# only CUDA builds of torchvision, whose compiled ops cannot load beside the CPU torch; torchvision
# then still imports, except that it registers fake kernels for two ops its library would have
# defined. Defining those two schemas first (no kernels: nothing here calls them) lets it import.
"$py" -m pip install -q --no-deps "torchvision==0.28.0"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cat > "$site/_torchvision_cpu_schemas.py" <<'PY'
import torch

_lib = torch.library.Library("torchvision", "FRAGMENT")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
PY
echo "import _torchvision_cpu_schemas" > "$site/_torchvision_cpu_schemas.pth"
# fire, from the project's dependencies above: `python -m monai.bundle` (MONAI Label's multi-GPU
# training runs it under torchrun) needs it, and monailabel's own pins are not installed
"$py" -c 'import torchvision.utils, monailabel.transform.post, fire'
"$py" -c 'import monailabel, numpy, torch; print("monailabel", monailabel.__version__, "numpy", numpy.__version__, "torch", torch.__version__)'
