// The review screen: keyboard-first, no inline script (the page's Content-Security-Policy allows
// only our own static files). The server renders every piece of HTML; this file fetches it, keeps
// the keyboard focus on #review, and runs one action at a time, in the order the keys came.
(() => {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const form = document.getElementById("review-filters");
  const message = document.getElementById("review-message");
  const help = document.getElementById("review-help");
  const state = { exclude: [], back: [], undo: [], rejecting: false, breeds: null, view: { s: 1, x: 0, y: 0 }, drag: null };
  let chain = Promise.resolve();
  let pending = 0;

  // -- requests --------------------------------------------------------------------------------
  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function call(url, body, method) {
    return fetch(url, {
      method: method || "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrf(), accept: "text/html" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  // One action at a time: a key pressed while the previous action runs waits for it.
  function run(action) {
    pending += 1;
    root.dataset.busy = "1";
    chain = chain
      .then(action)
      .catch((err) => say(String(err)))
      .finally(() => {
        pending -= 1;
        if (pending === 0) root.dataset.busy = "0";
      });
    return chain;
  }

  function say(text) {
    message.textContent = text || "";
  }

  async function failed(response) {
    let text = await response.text();
    try {
      text = JSON.parse(text).error || text;
    } catch (e) {
      const doc = new DOMParser().parseFromString(text, "text/html");
      text = (doc.querySelector("main") || doc.body).textContent.trim().replace(/\s+/g, " ");
    }
    say(`${response.status}: ${text}`);
  }

  // -- what is on screen -----------------------------------------------------------------------
  const pairEl = () => root.querySelector(".review-pair");
  const pairId = () => (pairEl() ? Number(pairEl().dataset.pair) : null);
  const labelsEl = () => root.querySelector(".review-labels");
  const version = () => Number(labelsEl().dataset.version);

  function filters() {
    const out = {};
    for (const [key, value] of new FormData(form)) {
      if (value === "") continue;
      out[key] = key.endsWith("_confidence") ? Number(value) : value;
    }
    return out;
  }

  function show(html) {
    root.innerHTML = html;
    state.rejecting = false;
    resetZoom();
    bindZoom();
    root.focus();
  }

  function remember(list, id) {
    if (id && list[list.length - 1] !== id) list.push(id);
    if (list.length > 900) list.shift();
  }

  // -- actions ---------------------------------------------------------------------------------
  async function next(leaving) {
    const id = pairId();
    if (id) {
      remember(state.back, id);
      if (leaving) remember(state.exclude, id);
    }
    const response = await call("/review/next", { ...filters(), exclude: state.exclude });
    if (!response.ok) return failed(response);
    say("");
    show(await response.text());
  }

  async function open(id) {
    const response = await call(`/review/pairs/${id}`, undefined, "GET");
    if (!response.ok) return failed(response);
    say("");
    show(await response.text());
  }

  async function change(patch) {
    const id = pairId();
    if (!id) return false;
    const response = await call(`/review/pairs/${id}`, { version: version(), ...patch });
    if (response.status === 409 && response.headers.get("content-type").startsWith("text/html")) {
      root.querySelector("#review-conflict").innerHTML = await response.text();
      say("This pair changed since you loaded it: nothing was saved.");
      return false;
    }
    if (!response.ok) {
      await failed(response);
      return false;
    }
    say("");
    root.querySelector("#review-labels").innerHTML = await response.text();
    state.rejecting = false;
    state.undo.push({ pair: id, version: version() });
    return true;
  }

  async function decide(patch) {
    if (await change(patch)) await next(true);
  }

  async function undo() {
    const last = state.undo.pop();
    if (!last) return say("Nothing to undo.");
    const response = await call(`/review/pairs/${last.pair}/undo`, { version: last.version });
    if (!response.ok) return failed(response);
    say("");
    show(await response.text());
    state.exclude = state.exclude.filter((id) => id !== last.pair);
  }

  async function swap() {
    if (!(await change({ swap: true }))) return;
    const [before, after] = root.querySelectorAll(".zoom-frame");
    const [a, b] = [before.querySelector(".zoom-view"), after.querySelector(".zoom-view")];
    const [ca, cb] = [before.querySelector(".image-link"), after.querySelector(".image-link")];
    const holder = document.createElement("div");
    before.replaceChild(holder, a);
    after.replaceChild(a, b);
    before.replaceChild(b, holder);
    [ca.textContent, cb.textContent] = [cb.textContent, ca.textContent];
    [ca.href, cb.href] = [cb.href, ca.href];
  }

  function toggle(button) {
    const on = button.getAttribute("aria-pressed") === "true";
    const key = on ? "remove_services" : "add_services";
    return change({ [key]: [button.dataset.service] });
  }

  function rejectMode(on) {
    state.rejecting = on;
    const list = root.querySelector("#reject-reasons");
    if (list) list.hidden = !on;
  }

  function reject(reason) {
    const note = root.querySelector("#reject-note");
    const patch = { status: "rejected", reject_reason: reason };
    if (note && note.value.trim()) patch.note = note.value.trim();
    return decide(patch);
  }

  function reasonKey(index) {
    const buttons = root.querySelectorAll("#reject-reasons button[data-reason]");
    return buttons[index] ? buttons[index].dataset.reason : null;
  }

  // -- zoom and pan, the same on both images ---------------------------------------------------
  function applyZoom() {
    const { s, x, y } = state.view;
    for (const img of root.querySelectorAll(".zoomable")) {
      img.style.transform = `translate(${x}px, ${y}px) scale(${s})`;
    }
  }

  function resetZoom() {
    state.view = { s: 1, x: 0, y: 0 };
    applyZoom();
  }

  function bindZoom() {
    for (const view of root.querySelectorAll(".zoom-view")) {
      view.addEventListener("wheel", (event) => {
        event.preventDefault();
        const rect = view.getBoundingClientRect();
        const px = event.clientX - rect.left;
        const py = event.clientY - rect.top;
        const v = state.view;
        const s = Math.min(12, Math.max(1, v.s * (event.deltaY < 0 ? 1.25 : 0.8)));
        state.view = { s, x: px - ((px - v.x) * s) / v.s, y: py - ((py - v.y) * s) / v.s };
        if (s === 1) state.view = { s: 1, x: 0, y: 0 };
        applyZoom();
      }, { passive: false });
      view.addEventListener("pointerdown", (event) => {
        state.drag = { x: event.clientX, y: event.clientY };
        view.setPointerCapture(event.pointerId);
      });
      view.addEventListener("pointermove", (event) => {
        if (!state.drag) return;
        state.view.x += event.clientX - state.drag.x;
        state.view.y += event.clientY - state.drag.y;
        state.drag = { x: event.clientX, y: event.clientY };
        applyZoom();
      });
      view.addEventListener("pointerup", () => {
        state.drag = null;
      });
    }
  }

  // -- the breed picker: type-ahead over names and aliases -------------------------------------
  const fold = (text) =>
    text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();

  async function breeds() {
    if (!state.breeds) {
      const response = await fetch("/api/v1/taxonomy/breeds", { credentials: "same-origin" });
      state.breeds = (await response.json()).map((b) => ({
        name: b.name,
        phrases: [b.name, ...b.aliases].map((p) => [p, fold(p)]),
      }));
    }
    return state.breeds;
  }

  function matches(list, text) {
    const query = fold(text);
    if (!query) return [];
    const found = [];
    for (const breed of list) {
      let best = null;
      for (const [phrase, folded] of breed.phrases) {
        const rank = folded === query ? 0 : folded.startsWith(query) ? 1 : folded.includes(` ${query}`) ? 2 : folded.includes(query) ? 3 : null;
        if (rank !== null && (best === null || rank < best.rank)) best = { rank, phrase };
      }
      if (best) found.push({ name: breed.name, via: best.phrase, rank: best.rank + (best.phrase === breed.name ? 0 : 0.5) });
    }
    found.sort((a, b) => a.rank - b.rank || a.name.localeCompare(b.name));
    return found.slice(0, 8);
  }

  async function suggest(input) {
    const list = root.querySelector("#breed-suggestions");
    const found = matches(await breeds(), input.value);
    list.replaceChildren(
      ...found.map((hit, i) => {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.dataset.breed = hit.name;
        item.textContent = hit.via === hit.name ? hit.name : `${hit.name} (${hit.via})`;
        if (i === 0) item.classList.add("active");
        return item;
      }),
    );
    list.hidden = found.length === 0;
  }

  function moveActive(step) {
    const items = [...root.querySelectorAll("#breed-suggestions li")];
    if (!items.length) return;
    const at = items.findIndex((li) => li.classList.contains("active"));
    items.forEach((li) => li.classList.remove("active"));
    items[(at + step + items.length) % items.length].classList.add("active");
  }

  function chooseBreed(name) {
    root.focus();
    return run(() => change({ breed: name }));
  }

  // -- events ----------------------------------------------------------------------------------
  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const act = button.dataset.action;
    const actions = {
      accept: () => decide({ status: "accepted" }),
      "reject-start": () => rejectMode(true),
      reject: () => reject(button.dataset.reason),
      skip: () => next(true),
      swap: () => swap(),
      undo: () => undo(),
      toggle: () => toggle(button),
      caption: () => change({ caption: root.querySelector("#caption").value }),
      "zoom-reset": () => resetZoom(),
      reload: () => open(pairId()),
    };
    if (actions[act]) run(actions[act]);
  });

  root.addEventListener("mousedown", (event) => {
    const item = event.target.closest("#breed-suggestions li");
    if (item) {
      event.preventDefault();
      chooseBreed(item.dataset.breed);
    }
  });

  root.addEventListener("input", (event) => {
    if (event.target.id === "breed-input") suggest(event.target);
  });

  root.addEventListener("keydown", (event) => {
    const field = event.target;
    if (field.id === "breed-input") {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        moveActive(event.key === "ArrowDown" ? 1 : -1);
      } else if (event.key === "Enter") {
        event.preventDefault();
        const active = root.querySelector("#breed-suggestions li.active");
        if (active) chooseBreed(active.dataset.breed);
      } else if (event.key === "Escape") {
        field.value = "";
        root.querySelector("#breed-suggestions").hidden = true;
        root.focus();
      }
    } else if (field.id === "reject-note" && event.key === "Enter") {
      event.preventDefault();
      root.focus();
      run(() => reject("other"));
    } else if (field.id === "reject-note" && event.key === "Escape") {
      root.focus();
    }
  });

  const typing = (el) => el.matches("input, textarea, select, [contenteditable], [contenteditable] *");

  document.addEventListener("keydown", (event) => {
    if (typing(event.target)) return;
    const key = event.key;
    if (key === "?") {
      help.hidden = !help.hidden;
      return;
    }
    if (key === "Escape") {
      help.hidden = true;
      if (state.rejecting) rejectMode(false);
      return;
    }
    if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") {
      event.preventDefault();
      run(undo);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (state.rejecting) {
      if (/^[1-9]$/.test(key)) {
        event.preventDefault();
        const reason = reasonKey(Number(key) - 1);
        if (reason === "other" && !root.querySelector("#reject-note").value.trim()) {
          root.querySelector("#reject-note").focus();  // "other" needs a note: Enter there rejects
        } else if (reason) {
          rejectMode(false);
          run(() => reject(reason));
        }
      }
      return;
    }
    const actions = {
      a: () => run(() => decide({ status: "accepted" })),
      r: () => rejectMode(true),
      s: () => run(swap),
      b: () => {
        const input = root.querySelector("#breed-input");
        if (input) input.focus();
      },
      " ": () => run(() => next(true)),
      j: () => run(() => next(true)),
      ArrowRight: () => run(() => next(true)),
      ArrowDown: () => run(() => next(true)),
      k: () => run(previous),
      ArrowLeft: () => run(previous),
      ArrowUp: () => run(previous),
      u: () => run(undo),
      z: () => resetZoom(),
    };
    if (/^[1-9]$/.test(key)) {
      event.preventDefault();
      const button = root.querySelectorAll(".service-toggle")[Number(key) - 1];
      if (button) run(() => toggle(button));
      return;
    }
    if (actions[key] && (pairEl() || key === "j" || key === " ")) {
      event.preventDefault();
      actions[key]();
    }
  });

  async function previous() {
    const id = state.back.pop();
    if (!id) return say("This is the first pair of this session.");
    state.exclude = state.exclude.filter((x) => x !== id);
    await open(id);
  }

  run(() => (root.dataset.start ? open(Number(root.dataset.start)) : next(false)));
})();
