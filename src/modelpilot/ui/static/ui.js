// Show every <time datetime="...UTC..."> in the viewer's time zone, and turn the event
// filter's local date-time inputs into UTC ISO values for the server.
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) { el.title = el.textContent; el.textContent = fmt.format(d); }
  });
  var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll(".tz").forEach(function (el) { el.textContent = tz || "local"; });

  function pad(n) { return String(n).padStart(2, "0"); }
  function toLocalInput(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  var form = document.getElementById("event-filters");
  if (form) {
    form.querySelectorAll("input[data-utc]").forEach(function (input) {
      var hidden = form.querySelector("input[name='" + input.dataset.utc + "']");
      if (hidden && hidden.value) input.value = toLocalInput(hidden.value);
    });
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[data-utc]").forEach(function (input) {
        var hidden = form.querySelector("input[name='" + input.dataset.utc + "']");
        // a datetime-local value is in the viewer's zone; Date() reads it as local time
        hidden.value = input.value ? new Date(input.value).toISOString() : "";
      });
    });
  }
})();

// A figure is drawn by its inline script while the page is still being parsed: in a
// two-column grid the first one is drawn before its neighbour exists, at the full row's
// width, and then overflowed (and was clipped by) its half of the row. Every figure is fitted
// to its container once the page is laid out, and again whenever the container changes size.
(function () {
  "use strict";
  if (!window.Plotly) return;
  var plots = document.querySelectorAll(".js-plotly-plot");
  function fit(div) { if (div.offsetParent !== null) window.Plotly.Plots.resize(div); }
  plots.forEach(fit);
  if (window.ResizeObserver) {
    var observer = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var div = entry.target.querySelector(".js-plotly-plot");
        if (div) fit(div);
      });
    });
    plots.forEach(function (div) { if (div.parentElement) observer.observe(div.parentElement); });
  }
})();
