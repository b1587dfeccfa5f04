/* tunix-rt dashboard charts: uPlot line charts of metrics.jsonl columns.
   The same file runs inside the dashboard and inlined in report.html (no network either way). */
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  window.tunixCharts = window.tunixCharts || {};

  function width(el) { return Math.max(280, Math.min(el.clientWidth || 460, 620)); }

  function caption(el, n) {
    var c = el.querySelector(".points");
    if (c) { c.textContent = n + (n === 1 ? " point" : " points"); c.dataset.points = String(n); }
  }

  /* Axis ticks: uPlot's default keeps 3 decimals, so a learning rate of 3e-4 would read "0". */
  function tick(v) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
    return String(Number(v.toPrecision(4)));
  }

  /* One chart in `el` (a .chart box): xs is the step column, columns a list of {label, values}. */
  function plot(el, key, title, xs, columns) {
    var data = [xs].concat(columns.map(function (c) { return c.values; }));
    var series = [{ label: "step" }].concat(columns.map(function (c, i) {
      return { label: c.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
               points: { show: xs.length < 60 } };
    }));
    var opts = { title: title, width: width(el), height: 220, series: series,
                 scales: { x: { time: false } }, axes: [{ label: "step" }, { size: 60, values: function (u, ticks) { return ticks.map(tick); } }],
                 legend: { show: columns.length > 1, live: false } };
    var target = el.querySelector(".plot");
    target.innerHTML = "";
    var chart = new uPlot(opts, data, target);
    window.tunixCharts[key] = chart;
    caption(el, xs.length);
    return chart;
  }

  function update(key, el, xs, columns) {
    var chart = window.tunixCharts[key];
    chart.setData([xs].concat(columns.map(function (c) { return c.values; })));
    caption(el, xs.length);
  }

  function hasValues(values) { return values.some(function (v) { return v !== null && v !== undefined; }); }

  /* Draw (or refresh) one chart per key of `curves` ([[key, title], ...]) from one run's series. */
  function drawRun(container, curves, series) {
    curves.forEach(function (curve) {
      var key = curve[0], values = series[key] || [];
      var el = container.querySelector('[data-curve="' + key + '"]');
      if (!el) {
        if (!hasValues(values)) return;
        el = document.createElement("div");
        el.className = "chart";
        el.dataset.curve = key;
        el.innerHTML = '<div class="plot"></div><div class="points"></div>';
        container.appendChild(el);
      }
      var columns = [{ label: curve[1], values: values }];
      if (window.tunixCharts[key]) update(key, el, series.step, columns);
      else plot(el, key, curve[1], series.step, columns);
    });
  }

  /* Several runs' values of one metric overlaid: runs is [{name, series}], aligned on step. */
  function drawOverlay(el, key, title, runs) {
    var tables = runs.map(function (r) { return [r.series.step, r.series[key] || r.series.step.map(function () { return null; })]; });
    var joined = uPlot.join(tables);
    var columns = runs.map(function (r, i) { return { label: r.name, values: joined[i + 1] }; });
    plot(el, key, title, joined[0], columns);
  }

  /* Poll `url` every `ms` while `keepGoing(data)` is true; errors are shown, not thrown. */
  function poll(url, ms, onData, status) {
    function tick() {
      fetch(url, { cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error(url + ": HTTP " + r.status);
        return r.json();
      }).then(function (data) {
        if (status) status.textContent = "";
        if (onData(data)) setTimeout(tick, ms);
      }).catch(function (err) {
        if (status) status.textContent = "live update failed: " + err.message + " (retrying)";
        setTimeout(tick, ms * 2);
      });
    }
    setTimeout(tick, ms);
  }

  /* Seconds as "1 h 5 min" / "3 min 2 s" / "12 s"; "-" when unknown. */
  function duration(s) {
    if (s === null || s === undefined) return "-";
    s = Math.round(s);
    if (s >= 3600) return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
    if (s >= 60) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return s + " s";
  }

  window.tunix = { drawRun: drawRun, drawOverlay: drawOverlay, poll: poll, hasValues: hasValues, duration: duration };
})();
