// The complaint timer: seconds since the complaint. The clock starts at the complaint:
// a telephony or helpdesk link's start (already in the form), else when the rep presses
// Start or types their first key (or picks an offer). It counts on the server's clock
// (the page's render time plus the time elapsed here), so a browser whose clock is off
// does not move it. The goal is an appeasement given within 60 seconds; the timer stops
// when one is given.
(function () {
  "use strict";
  function startTimer() {
    var holder = document.querySelector(".timer[data-rendered-at]");
    var out = document.getElementById("timer");
    var startedField = document.getElementById("id_complaint_started_at");
    var sourceField = document.getElementById("id_complaint_start_source");
    var button = document.getElementById("timer-start");
    if (!holder || !out || !startedField) return;
    var renderedAt = Date.parse(holder.dataset.renderedAt);
    var loadedAt = Date.now();
    var started = Date.parse(startedField.value || holder.dataset.started);
    var handle = null;
    function serverNow() {
      return (isNaN(renderedAt) ? loadedAt : renderedAt) + (Date.now() - loadedAt);
    }
    function tick() {
      var seconds = Math.max(0, Math.floor((serverNow() - started) / 1000));
      out.textContent = seconds;
      holder.classList.toggle("late", seconds >= 60);
    }
    function run() {
      if (handle !== null) return;
      tick();
      handle = setInterval(tick, 250);
    }
    function start() {
      if (!isNaN(started)) return;
      started = serverNow();
      // The issue form is swapped after each answer: look its fields up afresh.
      var field = document.getElementById("id_complaint_started_at") || startedField;
      var source = document.getElementById("id_complaint_start_source") || sourceField;
      field.value = new Date(started).toISOString();
      if (source) source.value = "rep";
      holder.dataset.started = field.value;
      holder.classList.add("running");
      if (button) button.remove();
      run();
    }
    if (!isNaN(started)) run();
    if (button) button.addEventListener("click", start);
    document.addEventListener("keydown", function (event) {
      if (["Shift", "Control", "Alt", "Meta"].indexOf(event.key) === -1) start();
    }, true);
    document.addEventListener("change", function (event) {
      if (event.target.closest && event.target.closest("#issue-form")) start();
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      if (document.querySelector("#issue-results [data-testid=issuance-result]")) {
        if (handle !== null) clearInterval(handle);
        holder.classList.add("done");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", startTimer);
})();

// SLA timers in the case queue and on the case page: time left to each target,
// counting down live; past the target they turn red and count up.
(function () {
  "use strict";
  function format(seconds) {
    var sign = seconds < 0 ? "-" : "";
    seconds = Math.abs(seconds);
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return sign + (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".due[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
      if (isNaN(left)) return;
      el.textContent = format(left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 300);
    });
  }
  function fillApology() {
    var select = document.getElementById("apology-template");
    if (!select) return;
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var target = document.querySelector(select.dataset.fills);
      if (target && option.dataset.text) target.value = option.dataset.text;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    fillApology();
  });
})();

// Controls that submit their form when changed (no inline handlers: the CSP forbids them).
document.addEventListener("change", function (event) {
  if (event.target.matches("[data-submit-on-change]")) event.target.form.submit();
});

// Refusals and failures, once for the whole UI. htmx does not swap 4xx/5xx answers by
// default; the server answers a refusal with the form (or row) again, its errors field
// by field, and a 4xx status: that fragment is swapped in like a success. A 5xx, a full
// error page, a timeout or a lost connection swaps nothing and says so beside the form
// that was sent (its data-failed text, else the page's), never silence. Whatever
// appears marked data-focus (a refusal, a revealed code) takes the focus, so the rep
// and a screen reader land on it; the regions are role=alert.
(function () {
  "use strict";
  function isFragment(xhr) {
    return !/^\s*(<!doctype|<html)/i.test(xhr.responseText || "");
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.status < 500 && isFragment(xhr)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  function showFailure(event) {
    var elt = event.detail.elt;
    var holder = (elt && elt.closest && elt.closest("form")) || elt;
    if (!holder || !holder.isConnected) holder = document.getElementById("main");
    var text = holder.getAttribute("data-failed") || document.body.getAttribute("data-failed");
    var note = holder.querySelector(":scope > [data-testid=failure]");
    if (!note) {
      note = document.createElement("p");
      note.className = "error failure";
      note.setAttribute("role", "alert");
      note.setAttribute("tabindex", "-1");
      note.setAttribute("data-testid", "failure");
      holder.insertBefore(note, holder.firstChild);
    }
    note.textContent = text;
    note.focus();
  }
  document.addEventListener("htmx:responseError", showFailure);
  document.addEventListener("htmx:sendError", showFailure);
  document.addEventListener("htmx:timeout", showFailure);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form");
    var stale = form && form.querySelector(":scope > [data-testid=failure]");
    if (stale) stale.remove();
  });
  function focusNew(root) {
    var target = (root || document).querySelector("[data-focus]:not([data-focused])");
    if (target) {
      target.setAttribute("data-focused", "");
      target.focus();
      return true;
    }
    return false;
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    // A replayed answer (the same key sent twice) shows the appeasement once.
    var seen = {};
    document.querySelectorAll("#issue-results > [id]").forEach(function (result) {
      if (seen[result.id]) result.remove();
      seen[result.id] = true;
    });
    if (focusNew()) return;
    // A given appeasement: the form starts again, and so does the rep, in it.
    var form = document.getElementById("issue-form");
    var config = event.detail.requestConfig;
    if (form && config && config.verb === "post" && config.path === form.getAttribute("hx-post")) {
      var first = form.querySelector("[autofocus]");
      if (first && event.detail.xhr && event.detail.xhr.status < 300) first.focus();
    }
  });
  document.addEventListener("DOMContentLoaded", function () { focusNew(); });
})();

// The rep's keyboard: digits choose an offer, Ctrl+Enter gives, arrows walk the search
// results, "?" shows the list of shortcuts.
(function () {
  "use strict";
  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.tagName === "TEXTAREA" || target.isContentEditable) return true;
    if (target.tagName !== "INPUT") return false;
    return !/^(radio|checkbox|button|submit|reset)$/i.test(target.type);
  }
  document.addEventListener("keydown", function (event) {
    var form = document.getElementById("issue-form");
    var help = document.getElementById("shortcuts");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
      var button = document.getElementById("confirm-repeat") || document.getElementById("issue-button");
      event.preventDefault();
      if (button && !button.disabled) form.requestSubmit(button);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (form && /^[1-9]$/.test(event.key)) {
      var offers = form.querySelectorAll("input[name=offer]");
      var offer = offers[Number(event.key) - 1];
      if (offer) {
        event.preventDefault();
        offer.checked = true;
        offer.dispatchEvent(new Event("change", { bubbles: true }));
      }
      return;
    }
    if (event.key === "?" && help && !help.open) {
      event.preventDefault();
      help.showModal();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var box = document.getElementById("q");
    var results = document.getElementById("results");
    if (!box || !results) return;
    var links = Array.prototype.slice.call(results.querySelectorAll(".results a"));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    if (document.activeElement === box) at = -1;
    else if (at === -1) return;
    event.preventDefault();
    var next = at + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0) box.focus();
    else links[Math.min(next, links.length - 1)].focus();
  });
})();

// Plain forms (no htmx) that must not be sent twice: the button is disabled once the
// browser is sending the form (after the submit event, so the click still submits).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-submit-once]") || event.defaultPrevented) return;
  setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
  }, 0);
});

// The customer panel's recommendations: when the rep picks the reason, what works best
// for this customer and that incident type is loaded beside the offers (the reason's
// incident type decides it); "Choose" selects that offer in the give form, and the
// focus goes to "Give it now", so the recommended appeasement is one click (or Enter).
(function () {
  "use strict";
  // Plain fetch, not htmx: the list arrives while the rep goes on (picks an offer, gives),
  // and its swap must not move their focus or interleave with the give's own swap. The
  // answer to the last reason picked wins; a failed load leaves the slot as it was.
  // A give in flight: its answer brings the form (and its blocks) afresh, and nothing
  // may change the form under it meanwhile.
  function giving() {
    return Boolean(document.querySelector("#issue-form.htmx-request"));
  }
  // Fetch a block's HTML and hand it to `apply(current element, html)`: the answer to the
  // last request for that block wins, none lands during a give, a failed load changes
  // nothing.
  var latest = {};
  function fetchBlock(id, url, apply) {
    var ticket = (latest[id] = (latest[id] || 0) + 1);
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var current = document.getElementById(id);
        if (html !== null && ticket === latest[id] && current && !giving()) apply(current, html);
      })
      .catch(function () {});
  }
  function load(select) {
    var slot = document.getElementById("recommendations");
    if (!slot || !slot.dataset.url || !select.value) return;
    var url = slot.dataset.url + "?reason_code=" + encodeURIComponent(select.value);
    fetchBlock("recommendations", url, function (current, html) { current.innerHTML = html; });
  }
  // An experiment's assignment for this customer and reason (feedback's): the same way,
  // the block replaced whole; the token already shown is sent back, so a valid one is kept.
  function loadAssignment(select) {
    var block = document.getElementById("experiment-assignment");
    if (!block || !block.dataset.url) return;
    var token = document.getElementById("experiment-token");
    var url = block.dataset.url + "?reason_code=" + encodeURIComponent(select.value) +
      (token ? "&experiment_token=" + encodeURIComponent(token.value) : "");
    fetchBlock("experiment-assignment", url, function (current, html) {
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();
      var fresh = holder.content.firstElementChild;
      if (fresh && fresh.id === "experiment-assignment") current.replaceWith(fresh);
    });
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("#issue-form select[name=reason_code]")) {
      load(target);
      loadAssignment(target);
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-choose-offer]");
    if (!button) return;
    var form = document.getElementById("issue-form");
    var offer = form && form.querySelector("input[name=offer][value='" + button.dataset.chooseOffer + "']");
    if (!offer) return;  // not in the give form (it changed meanwhile): nothing is chosen
    offer.checked = true;
    offer.dispatchEvent(new Event("change", { bubbles: true }));
    var give = document.getElementById("issue-button");
    if (give) give.focus();
  });
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("#issue-form select[name=reason_code]");
    if (select && select.value) load(select);
  });
})();
