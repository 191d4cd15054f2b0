#!/usr/bin/env bash
# Set up everything (tools/setup.sh), then run the whole test suite, slow tests
# and 3D rendering included. Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/setup.sh"
cd "$ROOT"
# lint, formatting and the one-way import contract first: cheap, and a back import fails CI
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/ruff" check .
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/ruff" format --check .
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/lint-imports"
# the render tests must run (not skip): the package starts Xvfb when there is no display
export BRAINFORGE_REQUIRE_3D=1
exec "${BRAINFORGE_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
