// nerelproc review page: filters, the sortable document list, and entity and relation hover.
// No network, no libraries; reads only the data-* attributes of the page.
"use strict";
(function () {
  const entities = Array.from(document.querySelectorAll(".ent"));
  const chips = Array.from(document.querySelectorAll(".chip[data-verdict]"));
  const relations = Array.from(document.querySelectorAll("tr.rel"));
  // a row's argument types, for the type filter: the types of its two entities as drawn
  const argumentTypes = new Map(relations.map((row) => {
    const text = row.closest(".doc").querySelector(".text");
    const type = (id) => text.querySelector('[data-entity="' + id + '"]').dataset.type;
    return [row, [type(row.dataset.head), type(row.dataset.tail)]];
  }));
  const verdictNames = { tp: "correct", fp: "spurious (predicted only)", fn: "missed (gold only)" };

  // ---- filters: by type and by verdict, applied as the class "off"
  function hidden(kind) {
    return new Set(Array.from(document.querySelectorAll('input[data-filter="' + kind + '"]'))
      .filter((box) => !box.checked).map((box) => box.value));
  }
  function applyFilters() {
    const types = hidden("type"), verdicts = hidden("verdict");
    for (const el of entities) {
      el.classList.toggle("off", types.has(el.dataset.type) || verdicts.has(el.dataset.verdict));
    }
    for (const chip of chips) chip.classList.toggle("off", verdicts.has(chip.dataset.verdict));
    for (const row of relations) {
      row.classList.toggle("off", verdicts.has(row.dataset.verdict) || argumentTypes.get(row).some((t) => types.has(t)));
    }
  }
  document.querySelectorAll("input[data-filter]").forEach((box) => box.addEventListener("change", applyFilters));
  function setAll(kind, checked) {
    document.querySelectorAll('input[data-filter="' + kind + '"]').forEach((box) => { box.checked = checked; });
    applyFilters();
  }
  document.querySelectorAll("button[data-all]").forEach((b) => b.addEventListener("click", () => setAll(b.dataset.all, true)));
  document.querySelectorAll("button[data-none]").forEach((b) => b.addEventListener("click", () => setAll(b.dataset.none, false)));
  const labels = document.getElementById("show-labels");
  labels.addEventListener("change", () => document.body.classList.toggle("nolabels", !labels.checked));

  // ---- the document list: a header click sorts by it, ascending first (worst F1 on top)
  const table = document.getElementById("doc-table");
  const body = table.tBodies[0];
  table.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.sort;
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach((other) => other.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const d = Number(a.dataset[key]) - Number(b.dataset[key]);
      return (ascending ? d : -d) || Number(a.dataset.number) - Number(b.dataset.number);
    });
    body.append(...rows);
  }));
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (!row) return;
    body.querySelectorAll("tr.current").forEach((r) => r.classList.remove("current"));
    row.classList.add("current");
    if (!event.target.closest("a")) location.hash = "#doc-" + row.dataset.number;
  });

  // ---- hover: all fragments of the entity light up, a tip says what it is;
  // over a relation row, all fragments of its two entities light up
  const tip = document.getElementById("tip");
  let lit = [];
  function fragmentsOf(text, ids) {
    return Array.from(text.querySelectorAll(ids.map((id) => '[data-entity="' + id + '"]').join(", ")));
  }
  document.addEventListener("mouseover", (event) => {
    const el = event.target.closest && event.target.closest(".ent:not(.off)");
    const row = !el && event.target.closest && event.target.closest("tr.rel");
    lit.forEach((other) => other.classList.remove("hl", "grp"));
    lit = [];
    if (row) {
      lit = fragmentsOf(row.closest(".doc").querySelector(".text"), [row.dataset.head, row.dataset.tail]);
      lit.forEach((other) => other.classList.add("hl"));
    }
    if (!el) { tip.hidden = true; return; }
    lit = fragmentsOf(el.closest(".text"), [el.dataset.entity]);
    lit.forEach((other) => other.classList.add("hl"));
    const spans = lit.map((f) => f.dataset.start + "–" + f.dataset.end).join(", ");
    // the other mentions of the same entity (its group) light up too, more faintly
    if (el.dataset.group) {
      const mates = Array.from(el.closest(".text").querySelectorAll('[data-group="' + el.dataset.group + '"]'))
        .filter((other) => !lit.includes(other));
      mates.forEach((other) => other.classList.add("grp"));
      lit = lit.concat(mates);
    }
    const verdict = el.dataset.verdict ? " · " + verdictNames[el.dataset.verdict] : "";
    const normal = el.title ? " · " + el.title : "";
    tip.textContent = el.dataset.type + normal + " · " + spans + verdict;
    tip.hidden = false;
  });
  document.addEventListener("mousemove", (event) => {
    if (tip.hidden) return;
    tip.style.left = Math.min(event.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = event.clientY + 16 + "px";
  });
})();
