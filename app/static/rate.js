// Rating page: keyboard shortcuts, timing, and the next task without a reload. The form posts without it.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  if (!form) return;
  var started = performance.now();
  var status = document.getElementById("rate-status");
  var questions = ["overall", "legibility", "noise"];
  var keys = { a: "A", b: "B", c: "C", d: "D", t: "tie", x: null };

  function current() {
    for (var i = 0; i < questions.length; i++) {
      if (!form.querySelector("input[name=" + questions[i] + "]:checked")) return questions[i];
    }
    return null;
  }
  function highlight() {
    var q = current();
    form.querySelectorAll(".question").forEach(function (el) { el.classList.toggle("active", el.dataset.question === q); });
  }
  function answer(value) {
    var q = current();
    if (!q) return;
    var input = form.querySelector("input[name=" + q + "][value=" + value + "]");
    if (input) { input.checked = true; }
    highlight();
    if (!current()) submit();
  }
  function show(task) {
    form.dataset.task = task.task_id;
    form.querySelector("input[name=task_id]").value = task.task_id;
    var digit = document.getElementById("digit");
    if (digit) { digit.textContent = task.prompt || ""; digit.hidden = !task.prompt; }
    var grids = document.getElementById("grids");
    grids.className = "rate-grids" + (task.images.length > 2 ? " four" : "");
    grids.innerHTML = "";
    task.images.forEach(function (img) {
      var fig = document.createElement("figure"), cap = document.createElement("figcaption"), strong = document.createElement("strong"), el = document.createElement("img");
      strong.textContent = img.label; cap.appendChild(strong); el.className = "grid"; el.src = img.src; el.alt = img.alt;
      fig.appendChild(cap); fig.appendChild(el); grids.appendChild(fig);
    });
    form.querySelectorAll(".question fieldset").forEach(function (fs) {
      var q = fs.parentElement.dataset.question, legend = fs.querySelector("legend");
      fs.innerHTML = ""; fs.appendChild(legend);
      task.answers.forEach(function (a) {
        var label = document.createElement("label"), input = document.createElement("input");
        input.type = "radio"; input.name = q; input.value = a; input.required = true;
        label.appendChild(input); label.appendChild(document.createTextNode(" " + ({ tie: "Tie", both_bad: "Both bad", all_bad: "All bad" }[a] || a)));
        fs.appendChild(label);
      });
    });
    started = performance.now();
    highlight();
  }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : null })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; }); });
  }
  function next() {
    return post("/api/rate/tasks").then(function (r) {
      if (!r.ok) { status.textContent = r.body.detail; return; }
      show(r.body);
    });
  }
  function submit() {
    var body = { task_id: form.dataset.task, elapsed_ms: Math.round(performance.now() - started) };
    questions.forEach(function (q) { var c = form.querySelector("input[name=" + q + "]:checked"); body[q] = c ? c.value : null; });
    post("/api/rate/votes", body).then(function (r) {
      if (!r.ok) { status.textContent = "Not stored: " + (typeof r.body.detail === "string" ? r.body.detail : JSON.stringify(r.body.detail)); return; }
      document.getElementById("progress").textContent = r.body.votes_so_far;
      status.textContent = "Vote saved.";
      return next();
    });
  }
  function undo() {
    post("/api/rate/undo").then(function (r) {
      status.textContent = r.ok ? "Last vote undone." : r.body.detail;
      if (r.ok) document.getElementById("progress").textContent = r.body.votes_so_far;
    });
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
  document.getElementById("undo-form").addEventListener("submit", function (ev) { ev.preventDefault(); undo(); });
  form.addEventListener("change", highlight);
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /INPUT|TEXTAREA|SELECT/.test((ev.target.tagName || "")) && ev.target.type !== "radio") return;
    var k = ev.key.toLowerCase();
    if (k === "u") { ev.preventDefault(); undo(); return; }
    if (k in keys) {
      ev.preventDefault();
      var isFour = !!form.querySelector("input[value=all_bad]");
      answer(k === "x" ? (isFour ? "all_bad" : "both_bad") : keys[k]);
    }
  });
  highlight();
})();
