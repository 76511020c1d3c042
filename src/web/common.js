// Shared by the labeling and comparison pages (served as /common.js).
"use strict";
const $ = (id) => document.getElementById(id);

// Every action runs after the previous one has finished, so fast keystrokes are never dropped.
let chain = Promise.resolve();
const enqueue = (fn) => { chain = chain.then(fn, fn); return chain; };

function status(text, kind) { const s = $("status"); s.textContent = text; s.className = kind || ""; }

// GET (no body) or POST JSON; throws the server's error message on a non-2xx answer.
async function api(path, body) {
  const opts = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const j = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
  return j;
}
