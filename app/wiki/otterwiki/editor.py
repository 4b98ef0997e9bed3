"""Otterwiki's editor never loses an edit: a save over a newer revision is merged or resolved.

Otterwiki's `/<page>/save` stores whatever the form holds, so a person who had the editor open
while an agent changed the page replaced the agent's change without a word. Now the editor's
save forms carry the revision it opened (`base_revision`; Otterwiki's drafts already keep it,
and a draft continued in the editor brings its own), and the save view asks `Pages.rebase`:

- the page is still at that revision: Otterwiki saves as before;
- it changed elsewhere in the text: the three-way merge (git merge-file) is saved, with a message
  saying whose changes it was merged with;
- the changes overlap, or someone created, deleted or renamed the page meanwhile: nothing is
  saved and the editor comes back (409) with the person's text, a panel with the current version,
  the difference and the merge with conflict markers (all escaped), and the save form now at the
  current revision, so saving again after resolving stores what the person settled on.
"""

from __future__ import annotations

import functools
from types import ModuleType

from app.core.errors import Conflict
from app.pages.storage import Pages

# Both of editor.html's save forms (the commit dialog's, and the navbar's when commit messages
# are off) send the revision the editor opened; `revision` is what Otterwiki's drafts store too.
_BASE_FIELD = '<input type="hidden" name="base_revision" value="{{ revision }}">'
# Shown above the editor when a save met an overlapping change (`g.robot_conflict`).
_CONFLICT_PANEL = """{% set conflict = robot_conflict() %}{% if conflict %}
<div class="alert alert-danger m-10 robot-conflict" role="alert" id="robot-conflict"
     style="max-height: 40vh; overflow: auto;">
  <h4 class="alert-heading">Not saved: {{ pagename }} changed while you were editing</h4>
  <p>{{ conflict.message }}</p>
  <p>Your text is kept in the editor. Bring in what you want to keep from the current version
  and save again: the page is
  {%- if conflict.current_revision %} now at revision
  <span class="revision-small">{{ conflict.current_revision[:8] }}</span>
  {%- if conflict.authors %} (changed by {{ conflict.authors | join(", ") }}){% endif %}
  {%- else %} gone now{% endif %}, and your save replaces that.</p>
  {% if conflict.diff %}<details open><summary>What differs: the current version (-) and
  yours (+)</summary><pre id="robot-conflict-diff">{{ conflict.diff }}</pre></details>{% endif %}
  {% if conflict.current_content is not none %}<details><summary>The current
  version</summary><pre id="robot-conflict-current">{{ conflict.current_content }}</pre>
  </details>{% endif %}
  {% if conflict.with_markers %}<details><summary>Both, merged with conflict
  markers</summary><pre id="robot-conflict-markers">{{ conflict.with_markers }}</pre>
  </details>{% endif %}
</div>{% endif %}
<div id="editor_split">"""
_TEXTAREA = '<textarea id="content_editor" name="content_editor">{{ content_editor }}</textarea>'
# (template, anchor, what replaces it), applied by csp.RewritingLoader.
TEMPLATE_ADDITIONS = (
    (
        "editor.html",
        '      <input id="save_content" type="hidden"',
        "      " + _BASE_FIELD + '\n      <input id="save_content" type="hidden"',
    ),
    (
        "editor.html",
        '\n<input id="save_content" type="hidden"',
        "\n" + _BASE_FIELD + '\n<input id="save_content" type="hidden"',
    ),
    (
        "editor.html",
        _TEXTAREA,
        _TEXTAREA.replace("content_editor }}", "robot_conflict().yours or content_editor }}"),
    ),
    ("editor.html", '<div id="editor_split">', _CONFLICT_PANEL),
    (
        "draft.html",
        "Saving the draft overwrites these changes:",
        "Saving the draft merges it with these changes; where both changed the same lines, "
        "you resolve that before anything is saved:",
    ),
)


# Otterwiki's warning when a draft of a page changed since is continued, no longer true.
_DRAFT_WARNING = (
    "Saving the draft overwrites these changes.",
    "Saving merges the draft with them.",
)


def robot_conflict() -> dict:
    """The conflict the editor is shown again for in this request, or {} (a Jinja global)."""
    from flask import g

    return g.get("robot_conflict") or {}


def _pages() -> Pages:
    from flask import current_app
    from flask import g

    return Pages.for_config(g.tenant.storage, current_app.config)


def _save_merging(original):
    """Wrap Otterwiki's `save` view (see the module doc); a form without base_revision (none
    of the editor's) is saved by Otterwiki as before."""

    @functools.wraps(original)
    def save(path):
        from flask import abort
        from flask import g
        from flask import request
        from otterwiki.auth import get_author
        from otterwiki.auth import has_permission
        from otterwiki.helper import toast
        from otterwiki.wiki import Page

        if "base_revision" not in request.form:
            return original(path)
        if not has_permission("WRITE"):
            abort(403)
        # As Otterwiki's own save view cleans the text, so a merge sees what it would store.
        content = request.form.get("content", "").replace("\r\n", "\n").strip() + "\n"
        try:
            outcome = _pages().rebase(path, content, request.form["base_revision"])
        except Conflict as error:
            details = error.extra.get("conflict") or {}
            gone = error.extra.get("reason") == "deleted"
            g.robot_conflict = {
                # Said to a person in the editor, not in the page API's words.
                "message": (
                    "This page was deleted or renamed while you edited it, so nothing was saved. "
                    "Your text is kept below: save again to create the page anew."
                )
                if gone
                else error.message,
                "yours": content,
                "current_revision": error.extra.get("current_revision"),
                "current_content": error.extra.get("current_content"),
                "authors": details.get("authors") or [],
                "diff": details.get("diff", ""),
                "with_markers": details.get("with_markers", ""),
            }
            # "conflict" is no draft choice Otterwiki knows: it keeps the draft and opens the
            # editor at the page's current revision (the text comes from robot_conflict).
            page = Page(path).editor(author=get_author(), handle_draft="conflict")
            return page, 409
        if outcome["merged"]:
            authors = ", ".join(outcome["merged_authors"]) or "someone else"
            toast(
                f"{path} had changed since you opened it: your changes were merged with those "
                f"made since by {authors}.",
                "warning",
            )
        commit = request.form.get("commit", "").strip()
        return Page(path).save(content=outcome["content"], commit=commit, author=get_author())

    return save


def _say_drafts_merge(toast):
    @functools.wraps(toast)
    def honest(message, category=""):
        return toast(message.replace(*_DRAFT_WARNING), category)

    return honest


def install_merging_editor(server: ModuleType) -> None:
    """Make Otterwiki's app (`server.app`) merge or refuse editor saves over newer revisions."""
    from otterwiki import wiki

    app = server.app
    app.jinja_env.globals["robot_conflict"] = robot_conflict
    app.view_functions["save"] = _save_merging(app.view_functions["save"])
    wiki.toast = _say_drafts_merge(wiki.toast)
