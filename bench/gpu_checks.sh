#!/usr/bin/env bash
# Every GPU check of the project in one go, for a machine with a CUDA GPU and PyTorch
# (with Triton) already installed: the scan and network tests on CUDA, bench/bench_gpu.py,
# and one epoch of the demo training on the GPU. Logs go to $OUT (or ./gpu-results).
#   bash bench/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"

python3 -m pytest -q -rs -m "slow or not slow" tests/test_triton_scan.py tests/test_selective_scan.py tests/test_network.py tests/test_compile.py 2>&1 \
    | tee "$out/tests.log" | tail -15

# add --compile_batches 8 for torch.compile rows (minutes more)
python3 bench/bench_gpu.py "$@" 2>&1 | tee "$out/bench_gpu.md"

demo=$(mktemp -d)
(cd bundle && python3 -m prepare synthetic --out "$demo/data" --num-images 200 >/dev/null \
    && start=$SECONDS \
    && python3 -m monai.bundle run training --config_file configs/train.yaml --dataset_dir "$demo/data" \
       --output_dir "$demo/runs" --num_epochs 1 --device cuda \
    && echo "one demo epoch on the GPU (the demo training split, batch 8, start-up included): $((SECONDS - start)) s") \
    > "$out/demo_epoch.log" 2>&1
grep -E "one demo epoch|val_dsc|Error|error" "$out/demo_epoch.log" | tail -5
