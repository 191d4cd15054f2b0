#!/usr/bin/env bash
# Set up everything (tools/setup.sh), then run the main job end to end; outputs
# go to out/demo (or the folder given as first argument).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/setup.sh"
cd "$ROOT"
# the released weights committed in this checkout, offline (fetch_weights verifies the hash)
export MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true
exec "${BRAINFORGE_VENV:-$ROOT/.venv}/bin/brainforge" demo --verbose info --out-dir "${1:-out/demo}"
