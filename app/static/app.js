// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var MAX_SEED = 4294967295;

  function compareForm() {
    var form = document.getElementById("seed-form");
    if (!form) return;
    var seed = document.getElementById("seed"), n = document.getElementById("n"), zoom = document.getElementById("zoom");

    function apply(push) {
      var s = Number(seed.value);
      if (!Number.isInteger(s) || s < 0 || s > MAX_SEED) { seed.setCustomValidity("a whole number from 0 to " + MAX_SEED); seed.reportValidity(); return; }
      seed.setCustomValidity("");
      document.querySelectorAll("img[data-base]").forEach(function (img) {
        var model = img.closest("[data-model]").dataset.model;
        if (img.dataset.columns) {  // a conditional model's class grid: its columns for each image count, from the server
          var cols = JSON.parse(img.dataset.columns)[n.value];
          img.src = img.dataset.base + "?seed=" + s + "&n=" + cols + "&scale=" + zoom.value;
          img.alt = "class grid of " + model + " for seed " + s + ": one row per digit 0–9, the same " + cols + " latents in every row";
          return;
        }
        img.src = img.dataset.base + "?seed=" + s + "&n=" + n.value + "&scale=" + zoom.value;
        img.alt = n.value + " samples from " + model + " for seed " + s;
      });
      var chosen = form.querySelector("input[name=models]");
      var url = "/?seed=" + s + "&n=" + n.value + "&zoom=" + zoom.value + (chosen ? "&models=" + encodeURIComponent(chosen.value) : "");
      if (push) history.pushState({ seed: s }, "", url);
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
      apply(false);
    });
  }

  function scrubber() {
    var range = document.getElementById("frame-range");
    if (!range) return;
    var box = range.closest(".scrubber"), img = document.getElementById("frame"), label = document.getElementById("frame-label");
    range.addEventListener("input", function () {
      var e = String(range.value).padStart(4, "0");
      img.src = box.dataset.base + "epoch_" + e + ".png";
      img.alt = "samples from the fixed progress latents after epoch " + range.value;
      label.textContent = range.value;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { compareForm(); scrubber(); });
})();
