// Bulk review: select pairs (click, shift-click for a range, or the keyboard), then one action
// for the selection, sent as one batch that can be undone as one. No inline script (CSP).
(() => {
  "use strict";
  const grid = document.getElementById("bulk-grid");
  if (!grid) return;
  const bar = document.getElementById("bulk-bar");
  const result = document.getElementById("bulk-result");
  const checks = () => [...grid.querySelectorAll(".bulk-check")];
  let anchor = null;

  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function refresh() {
    for (const box of checks()) box.closest(".bulk-card").classList.toggle("selected", box.checked);
    const n = checks().filter((b) => b.checked).length;
    document.getElementById("bulk-count").textContent = `${n} selected`;
  }

  function selectRange(from, to, on) {
    const all = checks();
    const [lo, hi] = [Math.min(from, to), Math.max(from, to)];
    for (let i = lo; i <= hi; i += 1) all[i].checked = on;
  }

  // A click on a card's box or label toggles it; with shift, everything from the last one clicked.
  grid.addEventListener("click", (event) => {
    const box = event.target.closest(".bulk-card") && event.target.closest(".bulk-card").querySelector(".bulk-check");
    if (!box) return;
    if (event.target !== box) {
      event.preventDefault();  // a click on the label: do the toggle here, once
      box.checked = !box.checked;
    }
    const at = checks().indexOf(box);
    if (event.shiftKey && anchor !== null) selectRange(anchor, at, box.checked);
    anchor = at;
    box.focus();
    refresh();
  });

  grid.addEventListener("keydown", (event) => {
    const all = checks();
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const columns = Math.max(1, Math.round(grid.clientWidth / all[0].closest(".bulk-card").offsetWidth));
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (event.key in moves) {
      event.preventDefault();
      const to = Math.min(all.length - 1, Math.max(0, at + moves[event.key]));
      if (event.shiftKey) {
        selectRange(anchor === null ? at : anchor, to, true);
        if (anchor === null) anchor = at;
      } else {
        anchor = to;
      }
      all[to].focus();
    } else if (event.key === "x" || event.key === " ") {
      event.preventDefault();
      all[at].checked = !all[at].checked;
      anchor = at;
    } else if (event.key === "a" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      all.forEach((b) => { b.checked = true; });
    } else if (event.key === "Escape") {
      all.forEach((b) => { b.checked = false; });
    } else {
      return;
    }
    refresh();
  });

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrf() },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function changeFor(kind) {
    const value = (id) => document.getElementById(id).value;
    return {
      accept: { status: "accepted" },
      reject: { status: "rejected", reject_reason: value("bulk-reason") },
      breed: { breed: value("bulk-breed") },
      "add-service": { add_services: [value("bulk-service")] },
      "remove-service": { remove_services: [value("bulk-service")] },
    }[kind];
  }

  function report(text, batch) {
    result.replaceChildren();
    const p = document.createElement("p");
    p.className = "card";
    p.textContent = text;
    if (batch) {
      const undo = document.createElement("button");
      undo.type = "button";
      undo.className = "secondary";
      undo.dataset.batch = batch;
      undo.textContent = "Undo this batch";
      p.append(" ", undo);
    }
    result.append(p);
  }

  bar.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-bulk]");
    if (!button) return;
    const ids = checks().filter((b) => b.checked).map((b) => Number(b.value));
    if (!ids.length) return report("Select pairs first.");
    try {
      const done = await post("/api/v1/review/bulk", { ids, change: { version: 1, ...changeFor(button.dataset.bulk) } });
      report(`${button.textContent.trim()}: ${done.count} pairs changed, ${done.unchanged.length} already so (batch ${done.batch}).`, done.batch);
    } catch (err) {
      report(`Not done: ${err.message}`);
    }
  });

  result.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-batch]");
    if (!button) return;
    try {
      const done = await post(`/api/v1/review/bulk/${button.dataset.batch}/undo`, {});
      const left = done.conflicts.length ? `; ${done.conflicts.length} changed since and left as they are` : "";
      report(`Undone: ${done.count} pairs back as they were${left}.`);
    } catch (err) {
      report(`Not undone: ${err.message}`);
    }
  });
})();
