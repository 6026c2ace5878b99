// The admin's only script besides htmx (CSP: scripts from this origin only, no inline code).
// It manages the audit slide-over: focus in and back, Esc and the back button to close.
(function () {
  "use strict";
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

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && panel()) {
      e.preventDefault();
      close();
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
