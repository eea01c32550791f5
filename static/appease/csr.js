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
      startedField.value = new Date(started).toISOString();
      if (sourceField) sourceField.value = "rep";
      holder.dataset.started = startedField.value;
      holder.classList.add("running");
      if (button) button.remove();
      run();
    }
    if (!isNaN(started)) run();
    if (button) button.addEventListener("click", start);
    document.addEventListener("keydown", function (event) {
      if (["Shift", "Control", "Alt", "Meta"].indexOf(event.key) === -1) start();
    }, true);
    var form = document.getElementById("issue-form");
    if (form) form.addEventListener("change", start);
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target.id === "issue-result" && event.detail.target.querySelector("[data-testid=issuance-result]")) {
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
