/* Draws the dashboard's plots: every <canvas data-chart="ID"> gets the Chart.js configuration stored
   in the <script type="application/json" id="ID"> that the server rendered (json_script). */
(function () {
  "use strict";

  // Vertical lines at given values on a chart whose x axis spans [low, high] evenly (a histogram).
  var marksPlugin = {
    id: "marks",
    afterDatasetsDraw: function (chart, _args, options) {
      if (!options || !options.lines || !options.lines.length) return;
      var area = chart.chartArea, ctx = chart.ctx, span = options.high - options.low;
      if (!(span > 0)) return;
      ctx.save();
      options.lines.forEach(function (line, i) {
        var x = area.left + (line.value - options.low) / span * (area.right - area.left);
        ctx.strokeStyle = "#a50e0e";
        ctx.lineWidth = 2;
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        ctx.moveTo(x, area.top);
        ctx.lineTo(x, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#a50e0e";
        ctx.font = "12px system-ui, sans-serif";
        ctx.textAlign = x > (area.left + area.right) / 2 ? "right" : "left";
        ctx.fillText(line.label, x + (ctx.textAlign === "right" ? -4 : 4), area.top + 14 + 14 * i);
      });
      ctx.restore();
    }
  };

  function draw(canvas) {
    if (canvas.dataset.drawn) return;
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") return;
    var config = JSON.parse(source.textContent);
    config.plugins = [marksPlugin];
    if (config.type === "scatter") {
      config.options.plugins.tooltip = {
        callbacks: {
          label: function (item) {
            return "separability " + item.parsed.x.toFixed(3) + ", consistency " + item.parsed.y.toFixed(2);
          }
        }
      };
    }
    new Chart(canvas, config);
    canvas.dataset.drawn = "1";
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.target); });
})();
