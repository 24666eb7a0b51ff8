// Rating page: keyboard answers, timing, grids enlarged on click, and the next task without a reload. The form posts
// without it. Keys and mouse submit the same way: answer the three questions, then Enter or the Submit button.
(function () {
  "use strict";
  var real = document.getElementById("real-form");
  if (real) {  // one image, real or generated: R and G answer, the time spent goes with the answer
    var shown = performance.now();
    real.addEventListener("submit", function () {
      document.getElementById("elapsed").value = Math.round(performance.now() - shown);
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var button = { r: "answer-real", g: "answer-generated" }[ev.key.toLowerCase()];
      if (button) { ev.preventDefault(); document.getElementById(button).click(); }
    });
    return;
  }
  var form = document.getElementById("vote-form");
  if (!form) return;
  var study = form.dataset.next;  // a crowd study: after each vote the study says what comes next
  var started = performance.now();
  var status = document.getElementById("rate-status");
  var questions = ["overall", "legibility", "noise"];
  var words = JSON.parse(document.getElementById("question-words").textContent);
  var names = { tie: "Tie", both_bad: "Both bad", all_bad: "All bad" };
  var keyOf = { tie: "T", both_bad: "X", all_bad: "X" };
  var answers = [];
  form.querySelectorAll("input[name=overall]").forEach(function (el) { answers.push(el.value); });

  function say(text) { status.textContent = text || ""; }
  function current() {
    for (var i = 0; i < questions.length; i++) {
      if (!form.querySelector("input[name=" + questions[i] + "]:checked")) return questions[i];
    }
    return null;
  }
  function highlight() {
    var q = current();
    form.querySelectorAll(".question").forEach(function (el) { el.classList.toggle("active", el.dataset.question === q); });
    if (!q) document.getElementById("submit-vote").focus();
    below();
  }
  // The open question, named in the bar at the window's bottom while it lies below the window.
  var nextLine = document.getElementById("rate-next");
  function below() {
    var q = current(), el = q && form.querySelector(".question[data-question=" + q + "]");
    var hidden = el && el.getBoundingClientRect().top > window.innerHeight - nextLine.parentElement.offsetHeight - 30;
    nextLine.textContent = hidden ? "Below: " + el.querySelector("legend").textContent : "";
  }
  window.addEventListener("scroll", below, { passive: true });
  window.onresize = below;  // the window's height decides what lies below it
  function answer(value) {
    var q = current();
    if (!q || answers.indexOf(value) < 0) return;  // a key this task does not offer does nothing, visibly below
    form.querySelector("input[name=" + q + "][value=" + value + "]").checked = true;
    say("");
    highlight();
  }
  function hint(list) {
    var el = document.getElementById("keys-hint");
    el.textContent = "Keys: ";
    list.forEach(function (a, i) {
      var k = document.createElement("kbd");
      k.textContent = keyOf[a] || a;
      el.appendChild(k);
      if (i < list.length - 1) el.appendChild(document.createTextNode(" "));
    });
    el.appendChild(document.createTextNode(" answer the highlighted question, "));
    var enter = document.createElement("kbd"); enter.textContent = "Enter"; el.appendChild(enter);
    el.appendChild(document.createTextNode(" submits,"));
  }
  function show(task) {
    var kind = task.images.length > 2 ? "four" : "pair";
    answers = task.answers.slice();
    form.dataset.task = task.task_id;
    form.querySelector("input[name=task_id]").value = task.task_id;
    document.getElementById("task-title").textContent = kind === "four" ? "Which looks best?" : "Which looks better?";
    document.getElementById("task-wording").textContent = (kind === "four" ? "Four" : "Two") +
      " generators each drew these digits from the same random inputs; a generator maps them its own way, so the " +
      "digits in one place need not match. Judge each grid as a whole.";
    var digit = document.getElementById("digit");
    if (digit) { digit.textContent = task.prompt || ""; digit.hidden = !task.prompt; }
    var grids = document.getElementById("grids");
    var old = grids.querySelector("img.grid");  // the new grids take the old ones' size before they load: no jump
    var size = old ? [old.getAttribute("width"), old.getAttribute("height")] : null;
    grids.className = "rate-grids" + (kind === "four" ? " four" : "");
    grids.innerHTML = "";
    task.images.forEach(function (img) {
      var fig = document.createElement("figure"), cap = document.createElement("figcaption"), strong = document.createElement("strong"), el = document.createElement("img");
      strong.textContent = img.label; cap.appendChild(strong); el.className = "grid"; el.src = img.src; el.alt = img.alt;
      if (size && size[0]) { el.setAttribute("width", size[0]); el.setAttribute("height", size[1]); }
      fig.appendChild(cap); fig.appendChild(el); grids.appendChild(fig);
    });
    form.querySelectorAll(".question fieldset").forEach(function (fs, i) {
      var q = fs.parentElement.dataset.question, legend = fs.querySelector("legend");
      legend.textContent = (i + 1) + ". " + words[kind][q];
      fs.innerHTML = ""; fs.appendChild(legend);
      task.answers.forEach(function (a) {
        var label = document.createElement("label"), input = document.createElement("input");
        input.type = "radio"; input.name = q; input.value = a; input.required = true;
        label.appendChild(input); label.appendChild(document.createTextNode(" " + (names[a] || a)));
        fs.appendChild(label);
      });
    });
    hint(task.answers);
    document.getElementById("progress").textContent = task.votes_so_far;
    started = performance.now();
    highlight();
  }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : null })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; }); });
  }
  function next(message) {
    return post("/api/rate/tasks").then(function (r) {
      if (!r.ok) { say(r.body.detail); return; }
      show(r.body);
      say(message);
      var top = document.getElementById("task-title");
      if (top.getBoundingClientRect().top < 0) { top.scrollIntoView(); below(); }  // the new task from its grids
    });
  }
  function submit() {
    if (current()) { say("Answer all three questions first (question " + (questions.indexOf(current()) + 1) + " is open)."); return; }
    var body = { task_id: form.dataset.task, elapsed_ms: Math.round(performance.now() - started) };
    questions.forEach(function (q) { body[q] = form.querySelector("input[name=" + q + "]:checked").value; });
    post("/api/rate/votes", body).then(function (r) {
      if (!r.ok) { say("Not stored: " + (typeof r.body.detail === "string" ? r.body.detail : JSON.stringify(r.body.detail))); return; }
      if (study) { window.location.assign(study); return; }
      return next("Vote saved.");
    });
  }
  function undo() {
    post("/api/rate/undo").then(function (r) {
      if (!r.ok) { say(r.body.detail); return; }
      return next("Last vote undone: here is its task again.");
    });
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
  var undoForm = document.getElementById("undo-form");
  if (undoForm) undoForm.addEventListener("submit", function (ev) { ev.preventDefault(); undo(); });
  form.addEventListener("change", function () { say(""); highlight(); });
  document.getElementById("grids").addEventListener("click", function (ev) {
    if (ev.target.tagName === "IMG") ev.target.closest("figure").classList.toggle("zoomed");
  });
  document.addEventListener("keydown", function (ev) {
    var tag = ev.target.tagName || "";
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /TEXTAREA|SELECT/.test(tag) || (tag === "INPUT" && ev.target.type !== "radio")) return;
    var k = ev.key.toLowerCase();
    if (k === "enter") {  // a focused link or other button keeps its own Enter
      if (/^(A|BUTTON|SUMMARY)$/.test(tag) && ev.target.id !== "submit-vote") return;
      ev.preventDefault(); submit(); return;
    }
    if (k === "u" && undoForm) { ev.preventDefault(); undo(); return; }
    var value = { a: "A", b: "B", c: "C", d: "D", t: "tie" }[k] || (k === "x" ? (answers.indexOf("all_bad") >= 0 ? "all_bad" : "both_bad") : null);
    if (value) { ev.preventDefault(); answer(value); }
  });
  highlight();
})();
