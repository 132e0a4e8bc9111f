// Leaderboard page charts, drawn with the vendored Chart.js from the JSON in #leaderboard-data.
// Every number plotted here is also in the page's tables, which are the text alternative.
(function () {
  "use strict";
  var source = document.getElementById("leaderboard-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var systems = data.systems;
  var Chart = window.Chart;
  var COLOURS = { elo: "#0b57d0", bt: "#0b57d0", weighted_elo: "#b35806", weighted_bt: "#b35806" };
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  if (reduceMotion) Chart.defaults.animation = false;

  function fmt(value) { return Number(value).toFixed(1); }

  // Chart.js has no error bars: draw each point's interval (raw.lo .. raw.hi) as a capped vertical line.
  var whiskerPlugin = {
    id: "ciWhiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, yScale = chart.scales.y;
      chart.data.datasets.forEach(function (dataset, i) {
        var meta = chart.getDatasetMeta(i);
        if (!dataset.whiskers || !chart.isDatasetVisible(i)) return;
        ctx.save();
        ctx.strokeStyle = dataset.borderColor;
        ctx.lineWidth = 2;
        meta.data.forEach(function (element, j) {
          var raw = dataset.data[j];
          if (!raw || raw.lo === null || raw.hi === null) return;
          var x = element.x, top = yScale.getPixelForValue(raw.hi), bottom = yScale.getPixelForValue(raw.lo);
          ctx.beginPath();
          ctx.moveTo(x, top); ctx.lineTo(x, bottom);
          ctx.moveTo(x - 6, top); ctx.lineTo(x + 6, top);
          ctx.moveTo(x - 6, bottom); ctx.lineTo(x + 6, bottom);
          ctx.stroke();
        });
        ctx.restore();
      });
    }
  };

  function drawBradleyTerry(canvas) {
    var methods = ["bt", "weighted_bt"].filter(function (m) { return data.ratings[m]; });
    var lows = [], highs = [];
    var datasets = methods.map(function (method, k) {
      // Side by side around each model's tick when both methods are drawn.
      var offset = methods.length > 1 ? (k === 0 ? -0.12 : 0.12) : 0;
      var points = [];
      data.ratings[method].forEach(function (rating, i) {
        if (rating === null) return;
        var lo = data.ci_low[method][i], hi = data.ci_high[method][i];
        points.push({ x: i + offset, y: rating, lo: lo, hi: hi, system: systems[i] });
        lows.push(lo === null ? rating : lo);
        highs.push(hi === null ? rating : hi);
      });
      return {
        label: data.titles[method], data: points, whiskers: true,
        borderColor: COLOURS[method], backgroundColor: COLOURS[method],
        pointStyle: k === 0 ? "circle" : "rectRot", pointRadius: 5, pointHoverRadius: 7
      };
    });
    var low = Math.min.apply(null, lows), high = Math.max.apply(null, highs), pad = Math.max(10, (high - low) * 0.08);
    new Chart(canvas, {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        maintainAspectRatio: false,
        scales: {
          x: {
            type: "linear", min: -0.5, max: systems.length - 0.5, grid: { display: false },
            // One tick per model, at its index (a linear axis would otherwise start at -0.5).
            afterBuildTicks: function (scale) { scale.ticks = systems.map(function (_, i) { return { value: i }; }); },
            ticks: {
              autoSkip: false, maxRotation: 60,
              callback: function (value) { return Number.isInteger(value) ? systems[value] : ""; }
            }
          },
          y: { suggestedMin: low - pad, suggestedMax: high + pad, title: { display: true, text: "Rating (Elo scale)" } }
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? items[0].raw.system : ""; },
              label: function (item) {
                var raw = item.raw, text = item.dataset.label + ": " + fmt(raw.y);
                if (raw.lo !== null && raw.hi !== null) text += " [" + fmt(raw.lo) + ", " + fmt(raw.hi) + "]";
                return text;
              }
            }
          }
        }
      },
      plugins: [whiskerPlugin]
    });
  }

  function drawElo(canvas) {
    var methods = ["elo", "weighted_elo"].filter(function (m) { return data.ratings[m]; });
    var values = [];
    var datasets = methods.map(function (method) {
      data.ratings[method].forEach(function (v) { if (v !== null) values.push(v); });
      return {
        label: data.titles[method], data: data.ratings[method], base: data.initial,
        backgroundColor: COLOURS[method], borderColor: COLOURS[method]
      };
    });
    values.push(data.initial);
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values), pad = Math.max(10, (high - low) * 0.08);
    new Chart(canvas, {
      type: "bar",
      data: { labels: systems, datasets: datasets },
      options: {
        maintainAspectRatio: false,
        scales: {
          x: { ticks: { autoSkip: false, maxRotation: 60 } },
          y: { beginAtZero: false, suggestedMin: low - pad, suggestedMax: high + pad, title: { display: true, text: "Elo rating" } }
        },
        plugins: {
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + fmt(item.raw); } } }
        }
      }
    });
  }

  var bt = document.getElementById("bt-chart");
  if (bt) drawBradleyTerry(bt);
  var elo = document.getElementById("elo-chart");
  if (elo) drawElo(elo);
})();
