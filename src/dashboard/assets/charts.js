// Draws the overview's charts with uPlot from the counts the page carries
// (<script type="application/json" id="rates">); no other script runs.
(() => {
  "use strict";
  const source = document.getElementById("rates");
  const UPlot = globalThis.uPlot;
  if (!source || typeof UPlot !== "function") return;
  const rates = JSON.parse(source.textContent);
  const COLORS = {
    received: "#0b5cad",
    delivered: "#1a7f37",
    deferred: "#bf8700",
    bounced: "#cf222e",
    expired: "#8250df",
    suppressed: "#57606a",
    complained: "#e16f24",
  };
  const HEIGHT = 240;
  const widthOf = (plot) => Math.max(320, plot.clientWidth);

  const draw = (figure) => {
    const series = rates[figure.dataset.window];
    const plot = figure.querySelector(".plot");
    const data = [series.starts.map((ms) => ms / 1000)];
    const lines = [{}];
    for (const type of figure.dataset.types.split(",")) {
      data.push(series.counts[type]);
      lines.push({ label: type, stroke: COLORS[type], width: 2, points: { show: false } });
    }
    return new UPlot(
      {
        width: widthOf(plot),
        height: HEIGHT,
        series: lines,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: series.bucketMs === 60000 ? "per minute" : "per hour" }],
      },
      data,
      plot,
    );
  };

  const charts = [...document.querySelectorAll("figure.chart")].map((figure) => ({ figure, chart: draw(figure) }));
  globalThis.addEventListener("resize", () => {
    for (const { figure, chart } of charts) {
      chart.setSize({ width: widthOf(figure.querySelector(".plot")), height: HEIGHT });
    }
  });
})();
