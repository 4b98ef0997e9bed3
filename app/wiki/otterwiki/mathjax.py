"""MathJax typesets page math with its `ui/safe` extension, so TeX cannot carry script or names.

Page math reaches the browser as text (escaped by the sanitizer), but MathJax turns TeX into
elements there: `\\href{javascript:...}` becomes a link MathJax follows on click, and the `html`
extension's `\\class`, `\\cssId` and `\\data` set any class, id or `data-*` attribute (the
platform binds its own handlers through `data-robot-*`). MathJax's own `ui/safe` extension
keeps URLs to http(s) and classes and ids to MathJax's, and without the `html` extension there
is no `\\data`; Otterwiki 2.26.1 configures neither, so we serve the MathJax component its
templates load with a few lines of configuration in front.
"""

from __future__ import annotations

import functools
from pathlib import Path

# The one MathJax component Otterwiki's templates load (snippets/renderer_js.html).
COMPONENT = "mathjax/tex-chtml.js"
# Runs before the component reads `window.MathJax`, which otterwiki.js set up as its config.
# `ui/safe` filters URLs, classes, ids and styles, but not the `data-*` attributes the `html`
# extension's `\data` writes (seen in Chromium with MathJax 5.0.0-beta.6), so that extension
# is taken out of the bundle, of autoload and of `\require` too.
SAFE_CONFIG = b"""/* robot: MathJax safe extension on, html extension (\\data ...) off. */
window.MathJax = window.MathJax || {};
MathJax.loader = MathJax.loader || {};
MathJax.loader.load = (MathJax.loader.load || []).concat(["ui/safe"]);
MathJax.tex = MathJax.tex || {};
MathJax.tex.packages = {"[-]": ["html"]};
MathJax.tex.autoload = Object.assign(MathJax.tex.autoload || {}, {html: []});
MathJax.tex.require = {allow: {html: false}};
"""


@functools.cache
def safe_component(static_folder: str) -> bytes:
    """Return Otterwiki's MathJax component (`COMPONENT` under `static_folder`, a path) with
    `SAFE_CONFIG` in front: the bytes every wiki's pages load. Read once per process.

    Raises OSError when the package file is missing (a broken Otterwiki install).
    """
    return SAFE_CONFIG + (Path(static_folder) / COMPONENT).read_bytes()


def unconfigured_components(static_folder: str) -> list[str]:
    """MathJax's other whole components in Otterwiki's static folder (`mathjax/*.js` but
    `COMPONENT`: tex-svg.js, core.js ...): paths under /static/. No template loads them, and
    each would run MathJax without `SAFE_CONFIG` for a script tag that ever got onto a page
    (the policy admits the wiki's /static/), so they are not served (twenty-first review)."""
    folder = Path(static_folder) / Path(COMPONENT).parent
    own = Path(COMPONENT).name
    return [f"{folder.name}/{file.name}" for file in folder.glob("*.js") if file.name != own]
