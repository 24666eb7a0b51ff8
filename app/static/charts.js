// Draws each figure.chart's Vega-Lite spec with the vendored vega-embed (its menu saves SVG or PNG), then folds the
// data table that stands in for the chart without JavaScript. The drawn axis's range is written on the figure
// (data-axis-min/max) for the page test to hold against the range its measure can take.
(function () {
  "use strict";
  function draw(fig) {
    var spec = JSON.parse(fig.querySelector("script.vega-spec").textContent);
    var options = {
      renderer: "svg",
      // the service's Content-Security-Policy allows no eval and no inline style: Vega's expression interpreter, and
      // vega-embed's and vega-tooltip's styles from /static/vendor/vega-embed.css
      ast: true,
      defaultStyle: false,
      forceActionsMenu: true,
      tooltip: { disableDefaultStyle: true },
      downloadFileName: fig.dataset.name,
      actions: { export: true, source: false, compiled: false, editor: false },
      i18n: { SVG_ACTION: "Save as SVG", PNG_ACTION: "Save as PNG" },
    };
    return vegaEmbed(fig.querySelector(".vega"), spec, options).then(function (result) {
      var axis = fig.dataset.measureAxis;
      if (axis) {
        var domain = result.view.scale(axis).domain();
        fig.dataset.axisMin = Math.min.apply(null, domain);
        fig.dataset.axisMax = Math.max.apply(null, domain);
      }
      var table = fig.querySelector("details.chart-data");
      if (table) table.open = false;
      fig.classList.add("drawn");
    }).catch(function (err) {
      fig.dataset.error = String(err);  // the table stays open: the data is still there
    });
  }
  // A chart inside a closed disclosure has no width yet: it is drawn when the disclosure opens.
  function whenShown(fig) {
    if (fig.dataset.pending) return;
    if (fig.offsetWidth > 0) { fig.dataset.pending = "1"; draw(fig); return; }
    var closed = fig.parentElement && fig.parentElement.closest("details:not([open])");
    if (closed) closed.addEventListener("toggle", function () { if (closed.open) whenShown(fig); });
  }
  function start() {
    var figures = document.querySelectorAll("figure.chart");
    if (!window.vegaEmbed) {  // the tables stay: say why there is no chart
      figures.forEach(function (fig) { fig.dataset.error = "the chart scripts did not load"; });
      return;
    }
    figures.forEach(whenShown);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
