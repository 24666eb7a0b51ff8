// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var MAX_SEED = 4294967295;

  function compareForm() {
    var form = document.getElementById("seed-form");
    if (!form) return;
    var seed = document.getElementById("seed"), n = document.getElementById("n"), zoom = document.getElementById("zoom");
    var view = document.getElementById("view");
    function viewParam() { return view && view.value !== "samples" ? "&view=" + view.value : ""; }

    function apply(push) {
      var s = Number(seed.value);
      if (!Number.isInteger(s) || s < 0 || s > MAX_SEED) { seed.setCustomValidity("a whole number from 0 to " + MAX_SEED); seed.reportValidity(); return; }
      seed.setCustomValidity("");
      document.querySelectorAll("img[data-base]").forEach(function (img) {
        var model = img.closest("[data-model]").dataset.model;
        if (img.dataset.columns) {  // a conditional model's class grid: its columns for each image count, from the server
          var cols = JSON.parse(img.dataset.columns)[n.value];
          img.src = img.dataset.base + "?seed=" + s + "&n=" + cols + "&scale=" + zoom.value + viewParam();
          img.alt = "class grid of " + model + " for seed " + s + ": one row per digit 0–9, the same " + cols + " latents in every row";
          return;
        }
        img.src = img.dataset.base + "?seed=" + s + "&n=" + n.value + "&scale=" + zoom.value + viewParam();
        img.alt = n.value + (viewParam() ? " artefact maps of samples from " : " samples from ") + model + " for seed " + s;
      });
      var chosen = form.querySelector("input[name=models]");
      var cell = new URLSearchParams(location.search).get("cell"), panel = document.getElementById("zoom-panel");
      var url = "/?seed=" + s + "&n=" + n.value + "&zoom=" + zoom.value + viewParam() + (chosen ? "&models=" + encodeURIComponent(chosen.value) : "") +
        (cell && panel && !panel.hidden ? "&cell=" + encodeURIComponent(cell) : "");  // a zoomed cell stays open on the new grids
      var note = document.getElementById("artefact-note");
      if (note) note.hidden = !viewParam();
      if (push) history.pushState({ seed: s }, "", url);
      document.dispatchEvent(new Event("grids-changed"));
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (ev.submitter && ev.submitter.id === "random") {
        var buf = new Uint32Array(1); crypto.getRandomValues(buf); seed.value = buf[0];
      }
      apply(true);
    });
    window.addEventListener("popstate", function () {
      var q = new URLSearchParams(location.search);
      if (q.get("seed")) { seed.value = q.get("seed"); }
      if (q.get("n")) { n.value = q.get("n"); }
      if (q.get("zoom")) { zoom.value = q.get("zoom"); }
      if (view) { view.value = q.get("view") || "samples"; }
      apply(false);
    });
  }

  // Click a cell of any grid: that cell of every grid on the page, 8 times larger, nearest neighbour, side by side
  // (the same latent in every model: a checkerboard is seen pixel by pixel). The cell is in the address (cell=ROW,COL,
  // from 1), so a link opens the page on it, and a new seed redraws it from the new grids.
  function cellZoom() {
    var panel = document.getElementById("zoom-panel");
    if (!panel) return;
    var TILE = 28, PAD = 2;
    function grids() { return [].slice.call(document.querySelectorAll("[data-model] img.grid")); }
    function scaleOf(img) { return Number(new URLSearchParams(img.src.split("?")[1] || "").get("scale")) || 3; }
    function address(cell) {
      var q = new URLSearchParams(location.search);
      if (cell) q.set("cell", (cell[0] + 1) + "," + (cell[1] + 1)); else q.delete("cell");
      history.replaceState(history.state, "", location.pathname + (q.toString() ? "?" + q.toString() : ""));
    }
    function hide() { panel.hidden = true; panel.innerHTML = ""; }
    function show(row, col) {
      panel.innerHTML = "";
      var title = document.createElement("p");
      title.textContent = "Row " + (row + 1) + ", column " + (col + 1) + " of every grid, 8× (click a cell again to change it; Escape closes):";
      panel.appendChild(title);
      grids().forEach(function (other) {
        var fig = document.createElement("figure"), canvas = document.createElement("canvas"), cap = document.createElement("figcaption");
        canvas.width = canvas.height = TILE * 8;
        var ctx = canvas.getContext("2d");
        ctx.imageSmoothingEnabled = false;
        var s = scaleOf(other), st = TILE * s + PAD;
        ctx.drawImage(other, PAD + col * st, PAD + row * st, TILE * s, TILE * s, 0, 0, TILE * 8, TILE * 8);
        cap.textContent = other.closest("[data-model]").dataset.model;
        fig.appendChild(canvas); fig.appendChild(cap); panel.appendChild(fig);
      });
      panel.hidden = false;
    }
    function fromAddress() {  // the cell the address names, once every grid has its pixels; none (or off the grid): closed
      var m = /^(\d+),(\d+)$/.exec(new URLSearchParams(location.search).get("cell") || "");
      if (!m) { hide(); return; }
      Promise.all(grids().map(function (img) { return img.decode().catch(function () {}); })).then(function () {
        var first = grids()[0], row = Number(m[1]) - 1, col = Number(m[2]) - 1;
        var st = first ? TILE * scaleOf(first) + PAD : 0;
        if (!first || row < 0 || col < 0 || PAD + (col + 1) * st > first.naturalWidth || PAD + (row + 1) * st > first.naturalHeight) { hide(); return; }
        show(row, col);
      });
    }
    document.addEventListener("click", function (ev) {
      var img = ev.target;
      if (!(img.tagName === "IMG" && img.classList.contains("grid") && img.closest("[data-model]"))) return;
      var rect = img.getBoundingClientRect(), k = img.naturalWidth / rect.width, step = TILE * scaleOf(img) + PAD;
      var x = (ev.clientX - rect.left) * k, y = (ev.clientY - rect.top) * k;
      var col = Math.floor((x - PAD) / step), row = Math.floor((y - PAD) / step);
      if (col < 0 || row < 0) return;
      show(row, col);
      address([row, col]);
      panel.scrollIntoView({ block: "nearest" });
    });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && !panel.hidden) { hide(); address(null); } });
    document.addEventListener("grids-changed", fromAddress);
    fromAddress();
  }

  function scrubber() {
    var range = document.getElementById("frame-range");
    if (!range) return;
    var box = range.closest(".scrubber"), img = document.getElementById("frame"), label = document.getElementById("frame-label");
    var epochs = box.dataset.epochs.split(",");
    range.addEventListener("input", function () {
      var epoch = epochs[Number(range.value)];
      img.src = box.dataset.base + "epoch_" + String(epoch).padStart(4, "0") + ".png";
      img.alt = "samples from the fixed progress latents after epoch " + epoch;
      label.textContent = epoch;
    });
  }

  // Every table that is not a chart's own (those have their link) can be taken away as CSV, as the page shows it.
  function tableDownloads() {
    var cell = function (c) {
      var v = c.innerText.trim().replace(/\s+/g, " ");
      return /[",]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
    };
    document.querySelectorAll("main table").forEach(function (t, i) {
      if (t.closest("figure.chart")) return;
      var rows = [].map.call(t.rows, function (r) { return [].map.call(r.cells, cell).join(","); });
      var name = (t.caption ? t.caption.innerText : "") || t.closest("section") && t.closest("section").querySelector("h2, h3") && t.closest("section").querySelector("h2, h3").innerText || "table " + (i + 1);
      var link = document.createElement("a");
      link.className = "csv table-csv";
      link.textContent = "Download this table (CSV)";
      link.download = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) + ".csv";
      link.href = "data:text/csv;charset=utf-8," + encodeURIComponent(rows.join("\n") + "\n");
      (t.closest(".table-scroll") || t).insertAdjacentElement("afterend", link);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { compareForm(); scrubber(); cellZoom(); tableDownloads(); });
})();
