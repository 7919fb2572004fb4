// The console's only script: quick exit with Escape pressed twice, deadlines
// counted down, and a notice when the organisation's inbox changes. Pages
// work without it.
(function () {
  "use strict";
  var exit = document.getElementById("quick-exit");
  var last = 0;
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || !exit) return;
    var now = Date.now();
    if (now - last < 800) window.location.replace(exit.href);
    last = now;
  });
  var lang = document.documentElement.lang || "en";
  function left(ms) {
    var neg = ms < 0, s = Math.abs(Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var fmt = new Intl.RelativeTimeFormat(lang, { numeric: "always" });
    var txt = h >= 1 ? fmt.format(neg ? -h : h, "hour") : fmt.format(neg ? -m : m, "minute");
    return txt;
  }
  function tick() {
    var els = document.querySelectorAll("[data-deadline]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], t = Date.parse(el.getAttribute("data-deadline"));
      if (isNaN(t)) continue;
      var ms = t - Date.now();
      if (!el.hasAttribute("data-abs")) el.setAttribute("data-abs", el.textContent);
      el.textContent = el.getAttribute("data-abs") + " (" + left(ms) + ")";
      el.classList.toggle("due-soon", ms < 3600 * 1000);
    }
  }
  tick();
  setInterval(tick, 30000);
  var live = document.body.getAttribute("data-live");
  if (live && window.EventSource) {
    var es = new EventSource(live);
    es.addEventListener("delivery", function () {
      var n = document.getElementById("live-notice");
      if (n) n.hidden = false;
      document.body.setAttribute("data-updates", String(1 + Number(document.body.getAttribute("data-updates") || 0)));
    });
    es.addEventListener("open", function () { document.body.setAttribute("data-live-open", "1"); });
  }
})();
