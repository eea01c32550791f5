// The complaint timer: seconds since the customer's complaint was opened. The goal is
// an appeasement given within 60 seconds; the timer stops when one is given.
(function () {
  "use strict";
  function startTimer() {
    var holder = document.querySelector(".timer[data-started]");
    var out = document.getElementById("timer");
    if (!holder || !out) return;
    var started = Date.parse(holder.dataset.started);
    if (isNaN(started)) return;
    var handle = setInterval(function () {
      var seconds = Math.max(0, Math.floor((Date.now() - started) / 1000));
      out.textContent = seconds;
      holder.classList.toggle("late", seconds >= 60);
    }, 250);
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target.id === "issue-result" && event.detail.target.querySelector("[data-testid=issuance-result]")) {
        clearInterval(handle);
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
