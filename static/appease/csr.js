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
