// Docket keyboard shortcuts and media reveal. Shortcuts are declared in the markup:
//   data-shortcut="n"   a button/link to click (or a field to focus) when "n" is pressed
//   data-action-key="3" a decision radio: checked by "3", then focus moves to the rule
// No single-key shortcut fires while typing in a field; Esc leaves the field,
// Ctrl+Enter (or Cmd+Enter) submits the form being filled, or the decision form.
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    if (tag === "INPUT") {
      var t = (el.type || "text").toLowerCase();
      return ["radio", "checkbox", "button", "submit", "reset", "hidden"].indexOf(t) === -1;
    }
    return false;
  }

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  // A reveal is recorded in the access log: the media box names where to post it (data-reveal-url).
  function recordReveal(box, items) {
    var url = box && box.dataset.revealUrl;
    if (!url) return;
    var headers = { "Content-Type": "application/x-www-form-urlencoded" };
    try { Object.assign(headers, JSON.parse(document.body.getAttribute("hx-headers") || "{}")); } catch (err) { /* no token */ }
    var body = "items=" + encodeURIComponent(items) + "&page=" + encodeURIComponent(box.dataset.revealPage || "");
    fetch(url, { method: "POST", headers: headers, body: body, credentials: "same-origin" });
  }

  function revealAll() {
    var box = document.querySelector("[data-media]");
    if (!box) return;
    var on = !box.classList.contains("media-revealed");
    box.classList.toggle("media-revealed", on);
    box.querySelectorAll(".evidence").forEach(function (b) {
      b.classList.toggle("revealed", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (on) recordReveal(box, "all");
  }

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-reveal-all]")) { revealAll(); return; }
    var ev = e.target.closest(".evidence");
    if (!ev) return;
    var on = !ev.classList.contains("revealed");
    ev.classList.toggle("revealed", on);
    ev.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) recordReveal(ev.closest("[data-media]"), "1");
  });

  // Search results: j/k (or the arrow keys) move between the results' links.
  function moveResult(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-result]"));
    if (!links.length) return false;
    var at = links.indexOf(document.activeElement);
    var next = at === -1 ? (step > 0 ? 0 : links.length - 1) : Math.min(Math.max(at + step, 0), links.length - 1);
    links[next].focus();
    return true;
  }

  document.addEventListener("keydown", function (e) {
    var el = document.activeElement;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      var form = el && el.form ? el.form : document.getElementById("decision-form");
      if (form) { e.preventDefault(); submit(form); }
      return;
    }
    if (e.key === "Escape" && typing(el)) { el.blur(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing || typing(el)) return;

    var key = e.key;
    if (key === "?") {
      var legend = document.getElementById("shortcuts");
      if (legend) { legend.scrollIntoView({ block: "nearest" }); legend.focus(); e.preventDefault(); }
      return;
    }
    if (key === "v") { revealAll(); e.preventDefault(); return; }
    if ((key === "j" || key === "ArrowDown") && moveResult(1)) { e.preventDefault(); return; }
    if ((key === "k" || key === "ArrowUp") && moveResult(-1)) { e.preventDefault(); return; }

    var radio = document.querySelector('[data-action-key="' + CSS.escape(key) + '"]');
    if (radio) {
      e.preventDefault();
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      var next = document.getElementById(radio.dataset.focusNext || "id_rule");
      (next || radio).focus();
      return;
    }
    var target = document.querySelector('[data-shortcut="' + CSS.escape(key) + '"]');
    if (target) {
      e.preventDefault();
      if (typing(target)) target.focus(); else target.click();
    }
  });

  // Show the duration field for restrictions that can end (a suspension needs one; a ban never ends).
  document.addEventListener("change", function (e) {
    if (!e.target.matches('#decision-form input[name="action"]')) return;
    var dur = document.getElementById("duration-field");
    if (dur) dur.hidden = e.target.value === "no_violation" || e.target.value === "ban";
  });

  // Bulk forms: a select-all box, and a confirmation naming how many cases the decision reaches.
  document.addEventListener("change", function (e) {
    if (e.target.id !== "select-all") return;
    var form = e.target.closest("form");
    form.querySelectorAll('input[name="cases"]').forEach(function (box) { box.checked = e.target.checked; });
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var name = form.getAttribute("data-confirm-count");
    if (!name) return;
    var n = form.querySelectorAll('input[name="' + name + '"]:checked').length;
    var action = form.querySelector('[name="action"]');
    var label = action && action.selectedIndex > 0 ? action.options[action.selectedIndex].text : "this decision";
    if (n && !window.confirm("Apply " + label + " to " + n + " case" + (n === 1 ? "" : "s") + "?")) e.preventDefault();
  });
})();
