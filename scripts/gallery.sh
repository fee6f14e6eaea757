#!/usr/bin/env bash
# Regenerate the README's report gallery (docs/img/report/) from a fresh `edgewise report --train --visualize`
# (about 3-4 minutes on 2 cores the first time; the trained runs are cached in $OUT/experiments).
# The page image is the top of the page, screenshot in headless Chromium (scripts/setup_browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/report-trained}
DEST=docs/img/report
.venv/bin/edgewise report --train --visualize --out "$OUT" --no-progress
mkdir -p "$DEST"
Q=conv64-s4-conv64-s4
V=2-conv3-maxpool2-2-conv3-maxpool2-3-conv3
cp "$OUT/figures/$V-pascal.png" "$DEST/pascal_slice.png"
cp "$OUT/figures/$Q-pascal.png" "$DEST/question_pascal.png"
cp "$OUT/figures/$V-padding-modes.png" "$DEST/padding_modes.png"
cp "$OUT/figures/$V-layers.png" "$DEST/layers.png"
cp "$OUT/figures/$Q-pathways.png" "$DEST/question_pathways.png"
cp "$OUT/figures/$Q-scaling.png" "$DEST/question_scaling.png"
cp "$OUT/figures/$Q-remedies.png" "$DEST/question_remedies.png"
cp "$OUT/figures/$V-remedies-sensitivity.png" "$DEST/remedies_sensitivity.png"
cp "$OUT/figures/trained-sensitivity.png" "$DEST/trained_sensitivity.png"
cp "$OUT/figures/visualize-index.png" "$DEST/visualize_index.png"
.venv/bin/python - "$OUT/index.html" "$DEST/page.png" <<'EOF'
import sys
from edgewise.testing.browser import check_page
from PIL import Image

check_page(sys.argv[1], sys.argv[2] + ".full.png")
full = Image.open(sys.argv[2] + ".full.png")
full.crop((0, 0, full.width, min(full.height, 1600))).save(sys.argv[2])  # the verdict, as a reader first sees it
EOF
rm -f "$DEST/page.png.full.png"
echo "gallery: $(ls "$DEST" | wc -l) images in $DEST from $OUT/index.html"
