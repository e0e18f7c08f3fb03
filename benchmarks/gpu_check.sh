#!/usr/bin/env bash
# One call on a GPU machine proves skinr there (under 8 minutes on one H100):
#   1. the estimator contract for all twelve estimators on the device
#      (SKINR_TEST_DEVICE=cuda python -m pytest tests/test_device.py);
#   2. the table of benchmarks/gpu.py (step times, PSNR, peak memory at 512 x 512).
# Results go to $OUT (the device tool's folder that comes back) or ./gpu-results:
# device_tests.txt, gpu.md, gpu.json, nvidia-smi.txt. Run from the repository root:
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
DEVICE="${SKINR_TEST_DEVICE:-cuda}"

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/nvidia-smi.txt"
if ! python -c "import skinr" 2>/dev/null; then
    python -m pip install --quiet -e ".[test]" > "$OUT/install.txt" 2>&1
fi
python -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.version.cuda)" \
    | tee "$OUT/torch.txt"

SKINR_TEST_DEVICE="$DEVICE" timeout 240 python -m pytest tests/test_device.py -q -rfE \
    -p no:cacheprovider > "$OUT/device_tests.txt" 2>&1
tests=$?
tail -5 "$OUT/device_tests.txt"

timeout 240 python benchmarks/gpu.py --device "$DEVICE" --out "$OUT" > "$OUT/gpu_table.txt" 2>&1
table=$?
tail -25 "$OUT/gpu_table.txt"
echo "device tests exit $tests, table exit $table"
exit $(( tests != 0 || table != 0 ))
