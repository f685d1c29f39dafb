// lookalike review UI: small progressive enhancement. Every action is a plain HTML form,
// so the pages work without JavaScript; this adds keyboard shortcuts, auto-applying
// filters, confirmations and the compare view.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // Filters apply as soon as they change; the slider shows its value while moving.
  $all("form[data-autosubmit]").forEach(function (form) {
    $all("select, input[type=checkbox]", form).forEach(function (el) {
      el.addEventListener("change", function () { form.requestSubmit(); });
    });
    $all("input[type=range]", form).forEach(function (el) {
      var out = document.getElementById(el.dataset.output);
      el.addEventListener("input", function () { if (out) out.textContent = Number(el.value).toFixed(2); });
      el.addEventListener("change", function () { form.requestSubmit(); });
    });
  });

  $all("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });

  // Bulk exclude: the button says how many files the chosen similarity marks, and the
  // confirmation repeats the count fetched just before it; the server marks nothing
  // unless that count still holds (expect_files).
  $all("form[data-bulk]").forEach(function (form) {
    var score = $("[data-bulk-score]", form), button = $("[data-bulk-button]", form);
    var expect = $("[data-bulk-expect]", form);
    function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
    function count() {
      var q = new URLSearchParams({ min_score: score.value, relation: form.dataset.relation, root: form.dataset.root });
      return fetch("/bulk-exclude.json?" + q.toString(), { headers: { accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (b) {
          expect.value = String(b.files);
          button.textContent = "Exclude " + plural(b.files, "file") + " in " + plural(b.groups, "group");
          return b;
        });
    }
    var pending = null;
    score.addEventListener("input", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { if (score.checkValidity()) count().catch(function () {}); }, 150);
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!score.reportValidity()) return;
      count().then(function (b) {
        var what = "similarity ≥ " + Number(b.min_score).toFixed(2) +
          (b.relation ? ", " + b.relation + " only" : "") + (b.root ? ", in " + b.root : "");
        if (b.files === 0) {
          window.alert("No file to mark: no group with " + what + " has a non-keeper left to exclude.");
          return;
        }
        var already = b.already ? " (" + b.already + " of them are excluded already)" : "";
        if (window.confirm("Mark " + plural(b.files, "file") + already + " excluded, in " +
            plural(b.groups, "group") + " with " + what + "?\n\nFiles you marked keep, chosen " +
            "keepers and reference files are left alone. Nothing is moved until you export.")) {
          form.submit();
        }
      }, function () { window.alert("Could not count the files to mark; reload the page."); });
    });
  });

  // Help dialog.
  var help = document.getElementById("help");
  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }
  $all("[data-toggle-help]").forEach(function (b) { b.addEventListener("click", toggleHelp); });

  // Selection of a card (groups on /groups, images on /groups/N).
  var container = $("[data-selectable]");
  var items = container ? $all(container.dataset.selectable, container) : [];
  var selected = -1;
  function select(i, scroll) {
    if (!items.length) return;
    i = Math.max(0, Math.min(items.length - 1, i));
    if (selected >= 0 && items[selected]) items[selected].classList.remove("selected");
    selected = i;
    items[i].classList.add("selected");
    if (scroll) items[i].scrollIntoView({ block: "nearest", behavior: "smooth" });
    if (history.replaceState && items[i].id) history.replaceState(null, "", "#" + items[i].id);
  }
  if (items.length) {
    var fromHash = location.hash ? items.findIndex(function (el) { return "#" + el.id === location.hash; }) : -1;
    var fallback = document.body.classList.contains("page-group") && items.length > 1 ? 1 : 0;
    select(fromHash >= 0 ? fromHash : fallback, fromHash >= 0);
    items.forEach(function (el, i) {
      el.addEventListener("click", function (ev) {
        if (!ev.target.closest("a, button, form, details")) select(i, false);
      });
    });
  }
  function current() { return selected >= 0 ? items[selected] : null; }
  function submit(root, action) {
    var form = root && $('form[data-action="' + action + '"]', root);
    var button = form && $("button", form);
    if (form && !(button && button.disabled)) form.requestSubmit();
  }

  // Compare view on a group page.
  var compare = $("#compare");
  var modes = ["side", "overlay", "diff", "blink"];
  function setMode(mode) {
    if (!compare) return;
    var stage = $("[data-stage]", compare);
    modes.forEach(function (m) {
      stage.classList.toggle("mode-" + m, m === mode);
      compare.classList.toggle("mode-" + m, m === mode);
    });
    $all("[data-mode]", compare).forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.mode === mode)); });
  }
  function setOther(id) {
    if (!compare || !id || id === compare.dataset.keeper) return;
    compare.dataset.other = id;
    var select = $("[data-compare-other]", compare);
    if (select) select.value = id;
    $("[data-b]", compare).src = "/thumb/" + id + "?size=1024";
    $("[data-ob]", compare).src = "/thumb/" + id + "?size=1024";
    $("[data-diff]", compare).src = "/diff/" + compare.dataset.keeper + "/" + id;
  }
  if (compare) {
    var stage = $("[data-stage]", compare);
    $all("[data-mode]", compare).forEach(function (b) {
      b.addEventListener("click", function () { setMode(b.dataset.mode); });
    });
    var zoom = $("[data-zoom]", compare), zoomOut = $("[data-zoom-out]", compare);
    zoom.addEventListener("input", function () {
      stage.style.setProperty("--zoom", zoom.value);
      zoomOut.textContent = zoom.value + "×";
    });
    var opacity = $("[data-opacity]", compare);
    opacity.addEventListener("input", function () { stage.style.setProperty("--opacity", opacity.value); });
    $("[data-compare-other]", compare).addEventListener("change", function (ev) { setOther(ev.target.value); });
    var panes = $all(".pane", stage), syncing = false;
    panes.forEach(function (p) {
      p.addEventListener("scroll", function () {
        if (syncing) return;
        syncing = true;
        panes.forEach(function (q) { if (q !== p) { q.scrollTop = p.scrollTop; q.scrollLeft = p.scrollLeft; } });
        syncing = false;
      });
    });
  }

  // Keyboard shortcuts (documented in the help dialog, "?").
  var onGroup = document.body.classList.contains("page-group");
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest("input, select, textarea, [contenteditable]")) return;
    var key = ev.key, card = current(), handled = true;
    if (key === "?") toggleHelp();
    else if (onGroup && (key === "j" || key === "k")) {
      var href = document.body.dataset[key === "j" ? "next" : "prev"];
      if (href) location.href = href;
    } else if (!onGroup && (key === "j" || key === "k")) select(selected + (key === "j" ? 1 : -1), true);
    else if (key === "h" || key === "ArrowLeft") select(selected - 1, true);
    else if (key === "l" || key === "ArrowRight") select(selected + 1, true);
    else if (!onGroup && (key === "Enter" || key === "o") && card) location.href = card.dataset.href;
    else if (!onGroup && (key === "g" || key === "x")) submit(card, "exclude-group");
    else if (onGroup && key === "g") submit(document, "exclude-group");
    else if (onGroup && key === "x") submit(card, "exclude");
    else if (onGroup && key === "s") submit(card, "keep");
    else if (onGroup && key === "u") submit(card, "none");
    else if (onGroup && key === "m") submit(card, "keeper");
    else if (onGroup && key === "n") submit(card, "not-duplicate");
    else if (onGroup && key === "d" && compare) {
      if (card) setOther(card.dataset.file);
      var now = modes.findIndex(function (m) { return $("[data-stage]", compare).classList.contains("mode-" + m); });
      setMode(modes[(now + 1) % modes.length]);
      compare.scrollIntoView({ block: "start", behavior: "smooth" });
    } else handled = false;
    if (handled) ev.preventDefault();
  });
})();
