/* robot: run Otterwiki's event handlers without inline script, so a strict CSP can hold.
 *
 * app/wiki/otterwiki/handlers.py turns each template handler into declarative attributes:
 *   data-robot-on<event>="path.to.function" or "@action", -arg<N>="<kind>:<value>", -return.
 * One listener per event, on the document, runs them. Only functions under the allow-listed
 * roots below can be called, and arguments are plain values, never code. The renderer's own
 * buttons (copy to clipboard, spoiler, page headings switch) are bound by class and id: their
 * inline handlers are removed from rendered pages.
 */
(function () {
  "use strict";
  // The same lists as CALLABLE_OBJECTS and CALLABLE_FUNCTIONS in handlers.py.
  var OBJECTS = ["otterwiki", "otterwiki_editor"];
  var FUNCTIONS = ["halfmoon.toggleSidebar", "halfmoon.toggleDarkMode", "confirm",
    "navigator.clipboard.writeText", "cmOpenSearch", "cmOpenReplace", "addPageRow", "cloneRow",
    "deleteRow"];
  var UNSAFE_NAMES = ["__proto__", "prototype", "constructor"];
  var EVENTS = ["click", "change", "input", "focus"];
  // The response's nonce, which the server also wrote on each element of its own templates
  // that has a handler (data-robot-nonce). Page content cannot know it, so markup that reaches
  // the DOM by any other way (mermaid builds labels in the browser) cannot borrow a handler.
  var NONCE = (document.currentScript && document.currentScript.nonce) || "";

  var ACTIONS = {
    "caret-end": function (element) {
      element.setSelectionRange(element.value.length, element.value.length);
    },
    "digits-only": function (element) {
      element.value = element.value.replace(/[^0-9]/g, "");
    },
    "follow-checked-url": function (element) {
      var wanted = element.checked ? element.dataset.urlSideBySide : element.dataset.urlInline;
      var url = new URL(wanted, window.location.href);
      if (url.origin === window.location.origin) window.location.href = url.href;
    }
  };

  function resolve(path) {
    var names = path.split(".");
    var objectMethod = names.length === 2 && OBJECTS.indexOf(names[0]) >= 0;
    if (!objectMethod && FUNCTIONS.indexOf(path) < 0) return null;
    var owner = window, value = window;
    for (var i = 0; i < names.length; i++) {
      if (UNSAFE_NAMES.indexOf(names[i]) >= 0 || value === null || value === undefined) {
        return null;
      }
      owner = value;
      value = value[names[i]];
    }
    return typeof value === "function" ? { owner: owner, call: value } : null;
  }

  function argument(text, element, event) {
    var kind = text.slice(0, 2), value = text.slice(2);
    if (kind === "s:") return value;
    if (kind === "n:") return Number(value);
    if (kind === "b:") return value === "true";
    if (kind === "v:") {
      if (value === "this") return element;
      if (value === "event") return event;
      if (value === "this.checked") return element.checked;
      if (value === "event.target.checked") return event.target.checked;
    }
    throw new Error("robot: unknown handler argument " + text);
  }

  function trusted(element) {
    return NONCE !== "" && element.getAttribute("data-robot-nonce") === NONCE;
  }

  function run(element, event, name) {
    if (!trusted(element)) return;
    var spec = element.getAttribute(name);
    if (spec.charAt(0) === "@") {
      if (!Object.prototype.hasOwnProperty.call(ACTIONS, spec.slice(1))) {
        throw new Error("robot: unknown handler action " + spec);
      }
      ACTIONS[spec.slice(1)](element, event);
      return;
    }
    var target = resolve(spec);
    if (!target) throw new Error("robot: refused handler " + spec);
    var args = [];
    for (var i = 0; element.hasAttribute(name + "-arg" + i); i++) {
      args.push(argument(element.getAttribute(name + "-arg" + i), element, event));
    }
    var result = target.call.apply(target.owner, args);
    // An inline handler that returns false cancels the event's default action.
    if (element.hasAttribute(name + "-return") && result === false) event.preventDefault();
  }

  // Capture on the document runs before any element can stop the event's propagation; walking
  // up from the target runs handlers innermost first, as bubbling inline handlers would.
  EVENTS.forEach(function (type) {
    var name = "data-robot-on" + type;
    document.addEventListener(type, function (event) {
      for (var element = event.target; element && element.nodeType === 1;
        element = element.parentElement) {
        if (element.hasAttribute(name)) run(element, event, name);
        if (type === "focus") break; // focus does not bubble
      }
    }, true);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy-to-clipboard, button.spoiler-button");
    if (!button || button.hasAttribute("data-robot-onclick")) return;
    if (button.classList.contains("spoiler-button")) window.otterwiki.toggle_spoiler(button);
    else window.otterwiki.copy_to_clipboard(button);
  }, true);

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.id !== "switch-headings" || box.hasAttribute("data-robot-onchange")) return;
    window.otterwiki.toggleClass(box.checked, "pagetoc");
  }, true);

  // Tables of the Datatable embedding (ids "s-dt-…"), with the embedding's default options;
  // its per-table inline script is not sent (see csp.py, TEMPLATE_ADDITIONS).
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.simpleDatatables) return;
    document.querySelectorAll('table[id^="s-dt-"]').forEach(function (table) {
      try {
        new window.simpleDatatables.DataTable(table, {
          perPageSelect: [["25", 25], ["50", 50], ["100", 100], ["All", 0]],
          perPage: 25,
        });
      } catch (error) {
        console.error("robot: could not set up datatable " + table.id, error);
      }
    });
  });
})();
