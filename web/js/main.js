// The page's entry point: loads the simulator (the Rust core compiled to
// WebAssembly in web/pkg/), or says how to build it; then starts the app
// (app.js) and exposes it to the end-to-end tests as window.__distribkv.

import { loadBackend } from "./sim-adapter.js";
import { App } from "./app.js";
import { $, esc } from "./dom.js";
import { isShardedHash } from "./sharded/timeline.js";

/** The page without the wasm build: how to build it. */
function showBuildMessage(err) {
  $("#boot").innerHTML = `<div class="box">
    <h2>The simulator is not built yet</h2>
    <p>This page runs the Rust simulator compiled to WebAssembly, and <code>web/pkg/distribkv_wasm.js</code> could not be loaded${err?.message ? ` (${esc(err.message)})` : ""}.</p>
    <p>From the repository root, this builds it into <code>web/pkg/</code> and serves the page:</p>
    <pre>scripts/serve-web.sh</pre>
    <p>(<code>scripts/build-web.sh</code> only builds; <code>web/</code> then works from any static file server.)</p>
  </div>`;
  $("#play").disabled = $("#step").disabled = true;
  document.body.classList.add("no-sim");
  window.__distribkv = { ready: false, error: String(err?.message ?? err) };
}

async function boot() {
  let backend;
  try {
    backend = await loadBackend();
  } catch (err) {
    console.warn("the simulator is not available:", err);
    showBuildMessage(err);
    return;
  }
  // The mode selector: a share link carries the mode (single-group links have none).
  $("#mode").addEventListener("change", (e) => {
    location.hash = e.target.value === "sharded" ? "#mode=sharded" : "#";
    location.reload();
  });
  const sharded = isShardedHash(location.hash);
  // a link of the other mode pasted into this tab: start that mode; the sharded mode opens any link
  // pasted into its tab the same way (it writes its own with history.replaceState: no hashchange)
  addEventListener("hashchange", () => { if (sharded || isShardedHash(location.hash)) location.reload(); });
  if (sharded) {
    const { ShardedApp } = await import("./sharded/app.js");
    const app = new ShardedApp(backend);
    window.__distribkv = {
      ready: true, mode: "sharded", backend: backend.name,
      fps: () => app.fps(), frameStats: () => app.frameStats(),
      sim: () => app.timeline.sim, timeline: () => app.timeline, app,
    };
    app.start();
    return;
  }
  const app = new App(backend);
  window.__distribkv = {
    ready: true,
    mode: "single",
    backend: backend.name,
    fps: () => app.fps(),
    frameStats: () => app.frameStats(),
    sim: () => app.timeline.sim,
    timeline: () => app.timeline,
    app,
  };
  app.start();
}

boot();
