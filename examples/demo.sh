#!/usr/bin/env bash
# The sneakernet workflow on the example dataset: pack it onto 2 MB "drives", then check every drive with
# plain b3sum, as a receiver without sneakernet could. Run from the repository root: make demo.
set -euo pipefail
cd "$(dirname "$0")/.."

work=demo-out
rm -rf "$work"
mkdir -p "$work"

# git keeps neither empty directories nor large binaries: add them to a copy of the dataset.
cp -a examples/dataset "$work/dataset"
mkdir -p "$work/dataset/empty-dir"
python3 examples/make_weights.py "$work/dataset/weights/model.safetensors" 3000000

echo "== pack: $work/dataset -> $work/shipment (2 MB drives)"
sneakernet pack "$work/dataset" --out "$work/shipment" --drive-size 2MB --chunk-size 256K

echo
echo "== verify every drive (sneakernet), then check them with plain b3sum (no sneakernet needed)"
sneakernet verify "$work"/shipment/drive-*
echo
if command -v b3sum >/dev/null 2>&1; then
  for drive in "$work"/shipment/drive-*; do
    (cd "$drive" && b3sum --check --quiet B3SUMS && echo "$(basename "$drive"): all files OK")
  done
else
  echo "b3sum is not installed (apt-get install b3sum); skipping"
fi

echo
echo "== the fingerprint by hand (matches pack's full fingerprint)"
if command -v b3sum >/dev/null 2>&1; then
  for drive in "$work"/shipment/drive-*; do b3sum --no-names "$drive/manifest.jsonl.zst"; done | b3sum --no-names
fi
