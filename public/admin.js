// The admin's only script besides htmx and its morph extension (CSP: scripts from this origin only, no
// inline code). It manages the audit slide-over (focus in, trapped inside, and back; Esc and the back
// button close it), announces state changes seen by live refreshes, and copies run ids.
(function () {
  "use strict";

  // --- The polite live region: say what changed, never steal focus. ---
  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    // Cleared first, so the same sentence twice is announced twice.
    region.textContent = "";
    window.setTimeout(function () {
      region.textContent = text;
    }, 50);
  }

  // The display state of each run on screen (the list's rows, or the run page's summary), keyed by run.
  function snapshot() {
    var seen = {};
    document.querySelectorAll("tr[data-run-id]").forEach(function (tr) {
      seen[tr.getAttribute("data-run-id")] = { kind: tr.getAttribute("data-display"), label: tr.getAttribute("data-label") };
    });
    var summary = document.getElementById("run-summary");
    if (summary) seen["this run"] = { kind: summary.getAttribute("data-display"), label: summary.getAttribute("data-label") };
    return seen;
  }

  function shortId(id) {
    return id === "this run" ? "This run" : "Run …" + id.slice(-8);
  }

  var before = null;
  function isPoll(e) {
    var elt = e.detail && e.detail.elt;
    return elt && (elt.id === "poller" || elt.id === "run-poller");
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (isPoll(e)) before = snapshot();
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!before) return;
    var after = snapshot();
    var changes = [];
    Object.keys(after).forEach(function (id) {
      var was = before[id];
      if (was && was.kind !== after[id].kind) changes.push(shortId(id) + " is now " + after[id].label + ".");
    });
    before = null;
    if (changes.length === 1) announce(changes[0]);
    else if (changes.length > 1) announce(changes.length + " runs changed state. " + changes.slice(0, 3).join(" "));
  });

  // --- Copy buttons (data-copy): the clipboard, or a selection to copy by hand where it is unavailable. ---
  document.addEventListener("click", function (e) {
    var t = e.target;
    var button = t && t.closest ? t.closest("button[data-copy]") : null;
    if (!button) return;
    var value = button.getAttribute("data-copy");
    var done = function () {
      button.setAttribute("data-copied", "");
      announce("Copied " + value + ".");
      window.setTimeout(function () {
        button.removeAttribute("data-copied");
      }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(value).then(done, function () {
        announce("Could not copy. The id is " + value + ".");
      });
    } else {
      announce("Copying is not available here. The id is " + value + ".");
    }
  });
  var opener = null; // the link that opened the slide-over
  var pushed = false; // whether opening it pushed a history entry (then "close" = back)

  function panel() {
    return document.querySelector("#slideover .slideover");
  }

  function focusPanel() {
    var p = panel();
    if (p) p.focus();
  }

  // Back to the link that opened it; for a slide-over opened by a deep link
  // (no opener), to the link of the event it showed, if that is listed.
  function returnFocus(shownId) {
    var id = (opener && opener.getAttribute("data-event-id")) || shownId;
    var target = id ? document.querySelector('a.event-link[data-event-id="' + CSS.escape(id) + '"]') : null;
    if (target) target.focus();
    opener = null;
  }

  function clearPanel() {
    var host = document.getElementById("slideover");
    if (host) host.innerHTML = "";
  }

  function close() {
    var p = panel();
    if (!p) return;
    if (pushed) {
      pushed = false;
      history.back(); // htmx restores the page as it was before the slide-over opened
      return;
    }
    // Opened from a deep link: drop ?event= from the URL without a reload.
    var url = new URL(location.href);
    url.searchParams.delete("event");
    history.replaceState(history.state, "", url.pathname + url.search);
    var shownId = p.getAttribute("data-event-id");
    clearPanel();
    returnFocus(shownId);
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt && elt.classList && elt.classList.contains("event-link")) opener = elt;
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === "slideover" && panel()) {
      pushed = true;
      focusPanel();
    }
  });

  document.addEventListener("htmx:historyRestore", function () {
    pushed = false;
    if (panel()) {
      focusPanel();
      return;
    }
    returnFocus();
  });

  // The slide-over is modal (aria-modal): Tab and Shift+Tab cycle inside it and never reach the page behind.
  var FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
  function trapTab(e, p) {
    var items = Array.prototype.filter.call(p.querySelectorAll(FOCUSABLE), function (el) {
      return el.getClientRects().length > 0;
    });
    if (items.length === 0) {
      e.preventDefault();
      p.focus();
      return;
    }
    var first = items[0];
    var last = items[items.length - 1];
    var active = document.activeElement;
    var inside = p.contains(active);
    if (e.shiftKey && (active === first || active === p || !inside)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !inside)) {
      e.preventDefault();
      first.focus();
    }
  }

  document.addEventListener("keydown", function (e) {
    var p = panel();
    if (!p) return;
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    } else if (e.key === "Tab") {
      trapTab(e, p);
    }
  });

  document.addEventListener("click", function (e) {
    var t = e.target;
    var closer = t && t.closest ? t.closest("[data-close]") : null;
    if (closer && panel()) {
      e.preventDefault();
      close();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // A deep link (?event=) renders the slide-over open: move focus into it.
    if (panel()) focusPanel();
  });
})();
