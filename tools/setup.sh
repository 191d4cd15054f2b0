#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent: Debian libraries for headless 3D
# rendering (Xvfb, Qt's xcb dependencies), a virtual environment with the CPU
# build of torch installed first (so pip never pulls a CUDA build), this package
# with its test extras, and the offline fsaverage template head (built once).
# Environment: BRAINFORGE_VENV (default .venv), BRAINFORGE_TORCH (default torch==2.13.0).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BRAINFORGE_VENV:-$ROOT/.venv}
TORCH=${BRAINFORGE_TORCH:-torch==2.13.0}
PYTHON=${PYTHON:-python3}

DEBS=(xvfb libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libgl1-mesa-dri libegl-mesa0 libxcb-icccm4
      libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1
      libxcb-randr0 libxcb-xinerama0 libxcb-xfixes0 libdbus-1-3 libfontconfig1)
if command -v dpkg >/dev/null && ! dpkg -s "${DEBS[@]}" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "[setup] installing Debian packages for headless 3D rendering"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${DEBS[@]}" >/dev/null \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${DEBS[@]}" >/dev/null; } \
        || echo "[setup] WARNING: could not install ${DEBS[*]}; 3D rendering needs them"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"$VENV/bin/python" -c "import torch" 2>/dev/null || { echo "[setup] installing $TORCH"; "${PIP[@]}" "$TORCH"; }
echo "[setup] installing mne-brainforge"
"${PIP[@]}" -e "$ROOT[test]"
echo "[setup] building/checking the offline fsaverage template"
"$VENV/bin/brainforge" head
