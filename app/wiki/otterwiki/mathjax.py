"""MathJax typesets page math with its `ui/safe` extension, so TeX cannot carry script or names.

Page math reaches the browser as text (escaped by the sanitizer), but MathJax turns TeX into
elements there: `\\href{javascript:...}` becomes a link MathJax follows on click, and the `html`
extension's `\\class`, `\\cssId` and `\\data` set any class, id or `data-*` attribute (the
platform binds its own handlers through `data-robot-*`). MathJax's own `ui/safe` extension
keeps URLs to http(s) and those names to MathJax's; Otterwiki 2.26.1 does not load it, so we
serve the MathJax component its templates load with a line of configuration in front.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from types import ModuleType

# The one MathJax component Otterwiki's templates load (snippets/renderer_js.html).
COMPONENT = "mathjax/tex-chtml.js"
# Runs before the component reads `window.MathJax`, which otterwiki.js set up as its config.
SAFE_CONFIG = b"""/* robot: load MathJax's safe extension (URLs, classes, ids, data-*). */
window.MathJax = window.MathJax || {};
MathJax.loader = MathJax.loader || {};
MathJax.loader.load = (MathJax.loader.load || []).concat(["ui/safe"]);
"""


def install_safe_mathjax(server: ModuleType) -> None:
    """Serve Otterwiki's `static/mathjax/tex-chtml.js` with `SAFE_CONFIG` in front of it.

    `server` is the booted `otterwiki.server` module; wraps its app's `static` view (the
    component is read once, with a content ETag). Installing again changes nothing.
    """
    from flask import send_file

    app = server.app
    original = app.view_functions["static"]
    if getattr(original, "robot_safe_mathjax", False):
        return
    body = SAFE_CONFIG + (Path(app.static_folder) / COMPONENT).read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]

    def static(filename):
        if filename != COMPONENT:
            return original(filename=filename)
        return send_file(
            io.BytesIO(body),
            mimetype="text/javascript",
            etag=etag,
            max_age=app.get_send_file_max_age(filename),
        )

    static.robot_safe_mathjax = True
    app.view_functions["static"] = static
