"""What the platform adds to Otterwiki's app: `g.tenant`, `g.caller`, errors, page API, CSP."""

from __future__ import annotations

from types import ModuleType

from app.wiki.otterwiki.account import install_account
from app.wiki.otterwiki.attachments import install_attachment_rules
from app.wiki.otterwiki.bounded_views import install_bounded_views
from app.wiki.otterwiki.caches import write_toc_rows_only_when_changed
from app.wiki.otterwiki.changelog import install_paged_changelog
from app.wiki.otterwiki.csp import install_csp
from app.wiki.otterwiki.editor import install_merging_editor
from app.wiki.otterwiki.emphasis import install_linear_emphasis
from app.wiki.otterwiki.errors import answer_bad_input
from app.wiki.otterwiki.link_destinations import install_linear_link_destinations
from app.wiki.otterwiki.link_tools import install_link_map_tools
from app.wiki.otterwiki.managed import install_managed_pages
from app.wiki.otterwiki.page_index import install_page_index
from app.wiki.otterwiki.page_preferences import install_page_preference_rules
from app.wiki.otterwiki.patterns import install_linear_embeddings
from app.wiki.otterwiki.patterns import install_linear_headings
from app.wiki.otterwiki.patterns import install_linear_patterns
from app.wiki.otterwiki.preferences import refuse_platform_preferences
from app.wiki.otterwiki.provenance import install_provenance
from app.wiki.otterwiki.render import install_render_cache
from app.wiki.otterwiki.request_limit import install_request_limit
from app.wiki.otterwiki.sanitize import SANITIZER_VERSION
from app.wiki.otterwiki.sanitize import install_sanitizer
from app.wiki.otterwiki.search import install_indexed_search
from app.wiki.otterwiki.static_files import install_static_files

# WSGI environ keys through which the gateway hands the request's wiki and caller to Flask's `g`.
TENANT_KEY = "robot.tenant"
CALLER_KEY = "robot.caller"


def _expose_request_context() -> None:
    from flask import g
    from flask import request

    g.tenant = request.environ.get(TENANT_KEY)
    g.caller = request.environ.get(CALLER_KEY)


def _robot_error(error):
    from flask import request

    from app.wiki.responses import error_response

    return error_response(error, request.path, request.method)


def _no_body_when_a_precondition_failed(response):
    """A 412 carries no file: werkzeug's conditional answer kept an attachment's whole body
    (9 MB for a wrong If-Match: twenty-third review)."""
    if response.status_code == 412:
        if hasattr(response.response, "close"):
            response.response.close()  # the file werkzeug opened for it
        response.direct_passthrough = False
        response.set_data(b"")
    return response


def install(server: ModuleType, blueprint) -> None:
    """Add the platform to Otterwiki's app: `g.tenant`/`g.caller`, errors, guards, the page API.

    `server` is the booted `otterwiki.server` module, `blueprint` the page API's Flask blueprint.
    Installing again in the same process (a second `create_app` in tests) does nothing.
    """
    from app.core.errors import RobotError

    app = server.app
    if blueprint.name in app.blueprints:
        return  # a second create_app in the same process (tests): already installed
    app.before_request_funcs.setdefault(None, []).insert(0, _expose_request_context)
    app.register_error_handler(RobotError, _robot_error)
    app.after_request(_no_body_when_a_precondition_failed)
    app.register_blueprint(blueprint)
    write_toc_rows_only_when_changed(server)
    install_sanitizer(server)
    install_csp(server)
    install_static_files(server)  # MathJax's safe component, handlers.js, none withheld
    install_paged_changelog(server)  # before provenance wraps the feeds' entries
    install_provenance(server)
    install_account(server)
    install_managed_pages(server)
    refuse_platform_preferences(server)
    install_indexed_search(server)  # before answer_bad_input wraps every view
    answer_bad_input(server)
    install_attachment_rules(server)  # after answer_bad_input's checks of hostile names
    install_page_preference_rules(server)  # after CSRF and answer_bad_input's checks
    install_merging_editor(server)
    install_linear_patterns(server)
    install_link_map_tools()  # rename and broken-links housekeeping read the link map
    install_linear_headings()
    install_linear_embeddings()
    install_linear_link_destinations()
    install_linear_emphasis()
    # Last, outside every other wrapper of the renderer: what it caches is what they return.
    install_render_cache(server, extra_version=SANITIZER_VERSION)
    install_page_index(server)
    install_bounded_views(server)
    install_request_limit(server)
    # The page API authenticates by Bearer token or cookie and takes JSON: no form CSRF token.
    server.csrf.exempt(blueprint)
