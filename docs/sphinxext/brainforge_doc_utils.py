"""Helpers of the documentation build (referenced by name from ``conf.py``)."""

import mne
from docutils import nodes
from mne.viz._brain._scraper import _BrainScraper

#: sphinx-gallery scraper of :class:`mne.viz.Brain` windows a tutorial leaves open.
brain_scraper = _BrainScraper()

MNE_URL = "https://mne.tools/stable/"
#: Labels of MNE's documentation that MNE's shared docstring parts refer to.
MNE_LABELS = {"tut-logging": "auto_tutorials/intro/50_configure_mne.html#tut-logging"}


def reset_3d(gallery_conf, fname):
    """Close every 3D figure a tutorial left open (they hold memory)."""
    mne.viz.close_all_3d_figures()


def link_to_mne(app, env, node, contnode):
    """Resolve references to MNE-Python objects and labels to mne.tools pages.

    The build has no intersphinx (it must work offline), so ``mne.*`` objects
    and the MNE labels of :data:`MNE_LABELS` are linked by URL.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") == "std" and node.get("reftype") == "ref":
        if target not in MNE_LABELS:
            return None
        url = MNE_URL + MNE_LABELS[target]
    elif node.get("refdomain") == "py" and target.startswith("mne."):
        if node.get("reftype") in ("meth", "attr"):
            owner = target.rsplit(".", 1)[0]
            url = f"{MNE_URL}generated/{owner}.html#{target}"
        elif node.get("reftype") == "mod":
            return None
        else:
            url = f"{MNE_URL}generated/{target}.html"
    else:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url, reftitle=target)
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", link_to_mne)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
