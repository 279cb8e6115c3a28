/* The console's charts: each [data-chart] element is drawn with uPlot (vendored beside this
   file) from the table [data-table] of the same name, so the chart shows exactly the table's
   numbers, and without JavaScript the table is still there. Nothing inline, nothing fetched. */
(function () {
  "use strict";
  var PALETTE = ["#0a5ab0", "#c2410c", "#116329", "#8250df", "#b42318", "#0e7490", "#a16207", "#be185d",
    "#4d7c0f", "#1e3a8a", "#9a3412", "#15803d", "#6d28d9", "#be123c", "#155e75", "#854d0e", "#86198f",
    "#3f6212", "#1d4ed8", "#7c2d12"];
  var charts = {};

  function readTable(table) {
    var names = [], dates = [], series = [];
    var x = table.querySelector("thead th[data-x]");
    table.querySelectorAll("thead th[data-series]").forEach(function (th) {
      names.push(th.getAttribute("data-label") || th.getAttribute("data-series"));
      series.push([]);
    });
    table.querySelectorAll("tbody tr[data-date]").forEach(function (tr) {
      var parts = tr.getAttribute("data-date").split("-");
      // the day's midnight in Beijing time (UTC+8), as uPlot's seconds
      dates.push(Date.UTC(+parts[0], +parts[1] - 1, +parts[2]) / 1000 - 8 * 3600);
      tr.querySelectorAll("td[data-value]").forEach(function (td, i) {
        var raw = td.getAttribute("data-value");
        series[i].push(raw === "" ? null : Number(raw));
      });
    });
    return { x: x ? x.textContent : "", names: names, data: [dates].concat(series) };
  }

  function draw(el) {
    var key = el.getAttribute("data-chart");
    var table = document.querySelector('table[data-table="' + key + '"]');
    if (!table || typeof window.uPlot !== "function") return;
    var read = readTable(table);
    var percent = el.getAttribute("data-unit") === "percent";
    var opts = {
      width: Math.max(el.clientWidth, 280),
      height: el.clientWidth < 600 ? 220 : 300,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Asia/Shanghai"); },
      scales: { y: percent ? { range: [0, 100] } : { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return percent ? v + "%" : v; }); } }],
      series: [{ label: read.x }].concat(read.names.map(function (name, i) {
        return { label: name, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
                 points: { show: read.data[0].length <= 31 } };
      }))
    };
    el.textContent = "";
    charts[key] = new window.uPlot(opts, read.data, el);
  }

  function drawAll() {
    document.querySelectorAll("[data-chart]").forEach(draw);
  }

  function resize() {
    Object.keys(charts).forEach(function (key) {
      var el = document.querySelector('[data-chart="' + key + '"]');
      if (el && charts[key]) charts[key].setSize({ width: Math.max(el.clientWidth, 280), height: charts[key].height });
    });
  }

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(resize, 150);
  });
  // What the browser tests read: the numbers each chart was drawn with.
  window.consoleCharts = charts;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
