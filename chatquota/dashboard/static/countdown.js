/* Turn each <time data-countdown datetime="..."> into "in 3 h 12 min 5 s (2026-12-01 00:00 UTC)".
   Without JavaScript the plain reset time stays. */
(function () {
  "use strict";
  function left(ms) {
    if (ms <= 0) { return "now — reload to see the new period"; }
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60), parts = [];
    if (d) { parts.push(d + " d"); }
    if (d || h) { parts.push(h + " h"); }
    parts.push(m + " min");
    if (!d) { parts.push(s % 60 + " s"); }
    return "in " + parts.join(" ");
  }
  function tick(items) {
    var now = Date.now();
    items.forEach(function (item) {
      item.el.textContent = left(item.at - now) + " (" + item.plain + ")";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var items = Array.prototype.map.call(document.querySelectorAll("time[data-countdown]"), function (el) {
      return { el: el, at: Date.parse(el.getAttribute("datetime")), plain: el.textContent };
    }).filter(function (item) { return !isNaN(item.at); });
    if (!items.length) { return; }
    tick(items);
    setInterval(function () { tick(items); }, 1000);
  });
}());
