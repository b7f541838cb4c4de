#!/usr/bin/env bash
# The whole sneakernet workflow on the example dataset: pack it onto 2 MB "drives", verify every drive (with
# sneakernet, then with plain b3sum as a receiver without sneakernet could), restore the drives one at a time
# in reverse order, and compare the result with the source. Run from the repository root: make demo.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${SNEAKERNET_DEMO_DIR:-demo-out}  # tests/test_docs.py runs the demo in a scratch directory
rm -rf "$work"
mkdir -p "$work"

# git keeps neither empty directories nor large binaries: add them to a copy of the dataset.
cp -a examples/dataset "$work/dataset"
mkdir -p "$work/dataset/empty-dir"
python3 examples/make_weights.py "$work/dataset/weights/model.safetensors" 3000000

echo "== plan: how many 2 MB drives, how long, and how that compares with the network"
sneakernet plan "$work/dataset" --drive-size 2MB --chunk-size 256KiB

echo
echo "== pack: $work/dataset -> $work/shipment (2 MB drives)"
sneakernet pack "$work/dataset" --out "$work/shipment" --drive-size 2MB --chunk-size 256KiB
# The receiver is sent the fingerprint; any drive says it too (info --json for a script).
fingerprint=$(sneakernet info "$work/shipment/drive-0001" --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["short_fingerprint"])')

echo
echo "== verify every drive against the fingerprint"
sneakernet verify "$work"/shipment/drive-* --fingerprint "$fingerprint"

echo
echo "== the same check with plain b3sum (no sneakernet needed)"
if command -v b3sum >/dev/null 2>&1; then
  for drive in "$work"/shipment/drive-*; do
    (cd "$drive" && b3sum --check --quiet B3SUMS && echo "$(basename "$drive"): all files OK")
  done
else
  echo "b3sum is not installed (apt-get install b3sum); skipping"
fi

echo
echo "== restore, one drive per run, last drive first"
for drive in $(ls -d "$work"/shipment/drive-* | sort -r); do
  sneakernet restore "$drive" --into "$work/restored"
  echo
done

echo "== status of the finished restore (exit 0: complete; 3 while drives are still needed)"
sneakernet status "$work/restored"

echo
echo "== compare the restored tree with the source (.sneakernet keeps only the record of the finished restore)"
diff -r --no-dereference --exclude=.sneakernet "$work/dataset" "$work/restored" \
  && echo "identical: every file, symlink and directory"
