"""sphinx-gallery image scraper for the PNG files the examples save.

Every gallery example saves its figures as PNG files in the directory named by
``STRUCTLEARN_EXAMPLE_OUT`` (the package's plotting functions return
:class:`matplotlib.figure.Figure` objects that pyplot does not track, so the
default matplotlib scraper would miss them). After each code block this scraper
moves the new files into the gallery and returns the reST that shows them.
Referenced from ``conf.py`` by module name so the configuration stays picklable.
"""

import os
import shutil
from pathlib import Path

from sphinx_gallery.scrapers import figure_rst


class PNGScraper:
    """Collect the PNG files written since the previous block."""

    def __repr__(self):
        return "PNGScraper"

    def __call__(self, block, block_vars, gallery_conf):
        out = Path(os.environ["STRUCTLEARN_EXAMPLE_OUT"])
        # Oldest first, so figures appear in the order the example made them.
        pngs = sorted(out.glob("*.png"), key=lambda p: p.stat().st_mtime) if out.is_dir() else []
        image_paths = []
        iterator = block_vars["image_path_iterator"]
        for png in pngs:
            target = next(iterator)
            shutil.move(str(png), target)
            image_paths.append(target)
        return figure_rst(image_paths, gallery_conf["src_dir"])


def _get_sg_image_scraper():
    return PNGScraper()
