"""Sphinx configuration of the mne-brainforge documentation.

Build: ``tools/docs.sh`` (or ``sphinx-build -W -b html . _build/html`` in this
folder). The tutorials in ``../tutorials`` are run by sphinx-gallery;
``-D plot_gallery=0`` skips running them. No step needs the network.
"""

import os
import sys
from pathlib import Path

# progress bars (tqdm) update at most every 30 s: a few lines, not hundreds,
# in the tutorials' captured output; set before tqdm is imported
os.environ.setdefault("TQDM_MININTERVAL", "30")

import pyvista  # noqa: E402

import mne_brainforge  # noqa: E402
from mne_brainforge.viz import ensure_3d_display  # noqa: E402

project = "mne-brainforge"
author = "mne-brainforge developers"
copyright = "mne-brainforge developers"
release = mne_brainforge.__version__
version = release.split(".dev")[0]

sys.path.insert(0, str(Path(__file__).parent / "sphinxext"))
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "brainforge_doc_utils",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_tutorials/*.md5", "auto_tutorials/*.ipynb"]
default_role = "py:obj"

# API pages: one page per object, numpydoc-formatted
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# Markdown pages (the benchmark reports, the model card)
myst_heading_anchors = 3

# No intersphinx (the build must work offline): brainforge_doc_utils links
# references to mne.* objects to their mne.tools pages

html_theme = "pydata_sphinx_theme"
html_title = f"mne-brainforge {release}"
html_theme_options = {
    "github_url": "https://github.com/mne-tools/mne-brainforge",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

# 3D renders: MNE's pyvista viewer under a virtual display on headless machines
ensure_3d_display()
os.environ.setdefault("MNE_3D_OPTION_THEME", "auto")  # no OS theme detection
pyvista.OFF_SCREEN = False
pyvista.BUILDING_GALLERY = True

sphinx_gallery_conf = {
    "examples_dirs": "../tutorials",
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"/\d\d_",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib", "brainforge_doc_utils.brain_scraper", "pyvista"),
    "reset_modules": ("matplotlib", "brainforge_doc_utils.reset_3d"),
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("mne_brainforge",),
    "min_reported_time": 1,
    "show_memory": False,
    "remove_config_comments": True,
}
