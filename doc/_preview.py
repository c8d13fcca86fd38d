"""Label the gallery pages built in small mode as a quick preview.

The examples read ``STRUCTLEARN_EXAMPLE_SMALL``: when it is set (to anything but ``""``
or ``"0"``) they run on tiny subsets with a few iterations, so that the documentation
builds in minutes -- and their numbers and figures are then noise that can contradict
what the page's text says. Every gallery page built that way gets a warning box right
under its title, saying so and pointing to the full-size results. Connected to Sphinx's
``source-read`` event in ``conf.py``; the pages' sources are never edited.
"""

import os
import re

SMALL_VARIABLE = "STRUCTLEARN_EXAMPLE_SMALL"
GALLERY_PREFIX = "auto_examples/"
MARKER = "structlearn-quick-preview"

NOTE = f"""
.. warning::
   :class: {MARKER}

   **Quick preview, not the results.** This page was built with
   ``{SMALL_VARIABLE}=1``: tiny subsets and a few iterations, so that the documentation
   builds in minutes. Its numbers and figures are noise and may contradict the text;
   the full-size results, with date and machine, are on the
   :doc:`results page <../results>`. Run the example as a script (``python
   examples/<name>.py``) to make the full-size figures.

"""

# a title line followed by an underline of one punctuation character, at least as long
_TITLE = re.compile(r"^(?P<title>[^\s.][^\n]*)\n(?P<line>([=\-~^\"'`#*+])\3*)[ \t]*\n",
                    re.MULTILINE)


def is_small(environ=None):
    """Whether the examples run in small mode (``STRUCTLEARN_EXAMPLE_SMALL`` set)."""
    environ = os.environ if environ is None else environ
    return environ.get(SMALL_VARIABLE, "0").strip() not in ("", "0")


def label_preview(text):
    """``text`` (reST) with the preview note inserted under its first title."""
    if MARKER in text:
        return text
    for match in _TITLE.finditer(text):
        if len(match.group("line")) >= len(match.group("title").rstrip()):
            return text[:match.end()] + NOTE + text[match.end():]
    return NOTE + text  # no title: the note goes first


def on_source_read(app, docname, source):
    """Sphinx ``source-read`` handler: label the gallery pages in small mode."""
    if docname.startswith(GALLERY_PREFIX) and is_small():
        source[0] = label_preview(source[0])


def setup(app):
    app.connect("source-read", on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
