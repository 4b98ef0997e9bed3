// Progressive enhancement for robot's management pages; every form works without it.
"use strict";

// "Copy" buttons (hidden until this runs): copy the text of the element named by data-copy.
function enableCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    const label = button.getAttribute("aria-label");
    function say(text, name) {
      button.textContent = text;
      button.setAttribute("aria-label", name);
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        say("Copied", "Copied");
        setTimeout(function () { say("Copy", label); }, 2000);
      }, function () {
        say("Copy failed; select the text instead", "Copy failed; select the text instead");
      });
    });
  });
}

// The new wiki's name: ask the server (which checks again on create) whether it is free.
function enableSlugCheck() {
  const input = document.querySelector("input[data-check-slug]");
  const status = document.getElementById("slug-status");
  if (!input || !status) return;
  let timer = null;
  let asked = "";
  function show(text, good) {
    status.textContent = text;
    status.classList.toggle("ok", good);
    status.classList.toggle("bad", !good && text !== "");
  }
  function check() {
    const slug = input.value.trim().toLowerCase();
    asked = slug;
    if (!slug) { show("", false); return; }
    fetch(input.dataset.checkSlug + "?slug=" + encodeURIComponent(slug), {
      credentials: "same-origin", headers: {"Accept": "application/json"}
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (!answer || answer.slug !== asked) return;
      show(answer.available ? "“" + slug + "” is free." : answer.problem, answer.available);
    }).catch(function () {});
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
}

document.addEventListener("DOMContentLoaded", function () {
  enableCopyButtons();
  enableSlugCheck();
});
