// The page's sharded mode: a controller group and several replica groups on
// shared hosts (ShardedSimulation). It takes over the stage canvas, the
// transport bar (play, step, speed, clock, timeline), the correctness card
// and the guide, and reuses the single-group mode's components: the history
// lanes (HistoryView), the event log (EventLog) and the inspector for a
// message or a link (Inspector). The single-group clients and network cards
// are hidden. Like the rest of the page it only draws and forwards clicks.

import { $, esc, setText, setHTML, showTooltip, toast } from "../dom.js";
import { Theme } from "../theme.js";
import { HistoryCache, HistoryView, opTooltipText, wireHistoryCanvas } from "../history-view.js";
import { EventLog, Inspector } from "../panels.js";
import { LAYOUTS, ShardedTimeline, decodeShardedRun, encodeShardedRun } from "./timeline.js";
import { draw, groupColor, groupName, hit } from "./view.js";
import { SHARDED_SCENARIOS } from "./tours.js";
import { planContext, failedClaims } from "./tour-kit.js";
import { LINK_MAX_MS } from "../share.js";

/** The simulation's share of a frame (ms), as in the single-group mode. */
const SIM_BUDGET_MS = 9;

const CARD = `
  <h2>Sharded service</h2>
  <p id="sh-inspect" class="small muted">Click a host to crash or restart it, a shard to move it, a message to read it, a link to cut it.</p>
  <div id="sh-inspect-actions" class="row"></div>
  <form id="sh-op-form" class="op-form" autocomplete="off">
    <select id="sh-op-kind" aria-label="Operation"><option>put</option><option>append</option><option>get</option></select>
    <input id="sh-op-key" value="x" aria-label="Key" size="6">
    <input id="sh-op-value" value="1" aria-label="Value" size="6">
    <button class="btn primary" type="submit">Send</button>
  </form>
  <p id="sh-route" class="small muted"></p>
  <label class="switch"><input type="checkbox" id="sh-workload"> Steady workload (3 clients)</label>
  <div class="row">
    <label>Move shard <select id="sh-move-shard"></select></label>
    <label>to <select id="sh-move-group"></select></label>
    <button class="btn small" id="sh-move" type="button">Move</button>
  </div>
  <div class="row">
    <label>Group <select id="sh-group"></select></label>
    <button class="btn small" id="sh-join" type="button">Join</button>
    <button class="btn small" id="sh-leave" type="button">Leave</button>
    <button class="btn small" id="sh-heal" type="button" title="Remove every partition">Heal</button>
  </div>
  <ul id="sh-groups" class="clients"></ul>
  <h3 class="small">Recent operations</h3>
  <ul id="sh-ops" class="clients small"></ul>
  <h3 class="small">Operator requests</h3>
  <ul id="sh-admin" class="clients small"></ul>`;

export class ShardedApp {
  constructor(backend) {
    this.backend = backend;
    this.canvas = $("#cluster");
    this.ctx2d = this.canvas.getContext("2d");
    this.playing = false;
    this.speedExp = Number($("#speed").value);
    this.selected = null;
    this.theme = new Theme();
    this.theme.card = this.theme.surface;
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { this.theme.read(); this.theme.card = this.theme.surface; this.dirty = true; });
    this.historyView = new HistoryView($("#history"), this.theme);
    this.historyCache = new HistoryCache();
    this.history = [];
    this.historyAt = 0;
    this.historyCost = 0;
    /** Operations a linearizability violation names, outlined in the history lanes. */
    this.highlightOps = new Set();
    /** The single-group clients' sessions, for the shared panels (the sharded journal names no sessions). */
    this.clientsCache = [];
    this.frames = [];
    this.stats = { simMs: 0, dataMs: 0, drawMs: 0, checkMs: 0 };
    this.lastCheckAt = 0;
    this.checkResult = null;
    this.guide = null;
    this.stopAt = null;
    this.buildDom();
    this.startChecker();
    this.inspector = new Inspector(this);
    this.eventLog = new EventLog(this);
    this.replayErrorsShown = 0;
    // a link that cannot be read, or that the simulator refuses, opens the default run and says why
    try {
      this.openRun(decodeShardedRun(location.hash));
    } catch (err) {
      this.notice(`This link could not be read: ${err.message}`);
      this.stopTour();
      this.newRun("small", 1, []);
    }
  }

  /** Opens a link's run: with a tour's step, the tour at that step (and the link's own run if it left the tour's plan). */
  openRun(run) {
    const tour = run.scenario && SHARDED_SCENARIOS.find((t) => t.id === run.scenario.id);
    if (run.scenario && !tour) this.notice(`The link's guided tour "${run.scenario.id}" does not exist: its run opens without it.`);
    if (tour) {
      // a link that names only the tour (and a step) starts it there
      if (run.at == null) { this.startTour(tour.id, { step: run.scenario.step }); return; }
      this.startTour(tour.id, { step: run.scenario.step, at: run.at });
      const key = (a) => JSON.stringify([a.t, a.s ?? 0, a.op, a.args]);
      const planned = this.timeline.actions;
      const same = run.layout === this.timeline.layout && run.seed === this.timeline.seed
        && run.actions.length <= planned.length && run.actions.every((a, i) => key(a) === key(planned[i]));
      if (same) return;
      // the link acted on the tour's run: show its run, still at that step of the tour
      this.stopAt = null;
      this.setPlaying(false);
    }
    this.newRun(run.layout, run.seed, run.actions);
    if (run.at != null) this.timeline.seekWithinBudget(run.at, run.atSteps);
    if (tour) {
      this.guide.failed = failedClaims(tour.steps[this.guide.step], this.guide.facts, this.timeline.sim);
      this.renderGuide();
    }
  }

  // ---------- DOM ----------
  buildDom() {
    document.body.classList.add("sharded");
    for (const id of ["#client-card", "#network-card"]) { const e = $(id); if (e) e.hidden = true; }
    $("#inspector").hidden = true; // shown for a message or a link
    const card = document.createElement("section");
    card.className = "card"; card.id = "shard-card"; card.innerHTML = CARD;
    $("#check-card").before(card);
    // the run form: a layout instead of a node count
    const nodes = $("#nodes").closest("label");
    nodes.innerHTML = `Layout <select id="sh-layout">${Object.entries(LAYOUTS).map(([k, l]) => `<option value="${k}">${esc(l.label)}</option>`).join("")}</select>`;
    $("#mode").value = "sharded";
    $("#run-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.stopTour();
      // a run the simulator refuses (a seed past 2^53 - 1) leaves the current one and says why
      const seed = Math.max(0, Math.floor(Number($("#seed").value) || 0));
      try { this.newRun($("#sh-layout").value, seed, []); } catch (err) { this.notice(`Cannot start this run: ${err.message}`); }
    });
    $("#settings-btn").hidden = true;
    $("#sh-op-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const kind = $("#sh-op-kind").value, key = $("#sh-op-key").value, value = $("#sh-op-value").value;
      this.act(kind, ...(kind === "get" ? [key] : [key, value]));
    });
    $("#sh-op-key").addEventListener("input", () => this.refreshPanels(true));
    $("#sh-workload").addEventListener("change", (e) => this.act("setWorkload", e.target.checked));
    $("#sh-move").addEventListener("click", () => this.act("move", Number($("#sh-move-shard").value), Number($("#sh-move-group").value)));
    $("#sh-join").addEventListener("click", () => this.act("join", [Number($("#sh-group").value)]));
    $("#sh-leave").addEventListener("click", () => this.act("leave", [Number($("#sh-group").value)]));
    $("#sh-heal").addEventListener("click", () => this.act("heal"));
    $("#play").addEventListener("click", () => this.setPlaying(!this.playing));
    $("#step").addEventListener("click", () => {
      this.setPlaying(false);
      if (this.timeline.display >= LINK_MAX_MS) { this.sayRunEnds(); return; }
      this.timeline.step(); this.runVersion++; this.dirty = true;
    });
    $("#speed").addEventListener("input", (e) => { this.speedExp = Number(e.target.value); setText($("#speed-out"), `${this.speed() < 1 ? this.speed().toFixed(2) : this.speed().toFixed(1)}×`); });
    $("#timeline").addEventListener("input", (e) => {
      this.setPlaying(false);
      this.timeline.seek(Math.round((Number(e.target.value) / 1000) * this.timeline.end));
      this.dirty = true;
    });
    $("#share-btn").addEventListener("click", () => this.copyLink());
    $("#guide-btn").addEventListener("click", () => (this.guide ? this.stopTour() : this.startTour(SHARDED_SCENARIOS[0].id)));
    this.canvas.addEventListener("click", (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.select(this.layout ? hit(this.layout, e.clientX - r.left, e.clientY - r.top) : null);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      const r = this.canvas.getBoundingClientRect();
      const h = this.layout ? hit(this.layout, e.clientX - r.left, e.clientY - r.top) : null;
      this.canvas.style.cursor = h ? "pointer" : "default";
      showTooltip(this.tooltipText(h), e.clientX, e.clientY);
    });
    this.canvas.addEventListener("pointerleave", () => showTooltip(null));
    wireHistoryCanvas($("#history"), this.historyView, {
      changed: () => { this.dirty = true; },
      tip: (op, x, y) => showTooltip(op ? opTooltipText(op, this.highlightOps.has(op.id)) : null, x, y),
    });
    addEventListener("keydown", (e) => {
      if (e.target.closest?.("input, select, textarea")) return;
      if (e.key === " ") { e.preventDefault(); this.setPlaying(!this.playing); }
      if (e.key === "Escape") this.select(null);
    });
    $("#boot").hidden = true;
  }

  /** Selects what a click hit: a host or a shard (the sharded card), a message or a link (the inspector). */
  select(sel) {
    this.selected = sel;
    if (sel?.type === "shard") $("#sh-move-shard").value = String(sel.id);
    $("#inspector").hidden = !(sel?.type === "msg" || sel?.type === "link");
    this.inspector.update(true);
    this.refreshPanels(true);
    this.dirty = true;
  }

  tooltipText(h) {
    if (!h || !this.state) return null;
    if (h.type === "msg") {
      const m = this.state.inFlight.find((x) => x.id === h.id);
      return m ? `${m.kinds.join(", ")} ${m.from} → ${m.to}${m.groups.length ? ` · ${m.groups.map(groupName).join(", ")}` : ""}\narrives at ${(m.deliverAt / 1000).toFixed(3)} s\nclick to read its fields or drop it` : null;
    }
    if (h.type === "link") {
      const cut = new Set((this.state.links?.cut ?? []).map(([a, b]) => `${a}>${b}`));
      return `Link ${h.a} ↔ ${h.b}\n${h.a} → ${h.b}: ${cut.has(`${h.a}>${h.b}`) ? "cut" : "open"} · ${h.b} → ${h.a}: ${cut.has(`${h.b}>${h.a}`) ? "cut" : "open"}\nclick to cut or restore`;
    }
    if (h.type === "host") return `Host ${h.id}: click to crash, restart or isolate it`;
    if (h.type === "shard") return `Shard ${h.id}: click to pick it for a move`;
    return null;
  }

  toast(text, opts) { toast(text, opts); }

  /** What the shared event log reads of the transport. */
  get playback() { return { playing: this.playing, speed: this.speed() }; }

  notice(text) {
    setText($("#notice-text"), text);
    $("#notice").hidden = !text;
  }

  speed() { return 10 ** this.speedExp; }

  /** The run ends where a share link stops replaying (share.js), as in the single-group mode. */
  sayRunEnds() {
    this.setPlaying(false);
    this.notice(`The run ends at ${LINK_MAX_MS / 3_600_000} h of virtual time: a share link replays no further.`);
  }

  /** Says when a recorded action (a link's) failed on replay: the simulator refused it, and the run went on without it. */
  reportReplayErrors() {
    const errors = this.timeline.replayErrors;
    const distinct = new Set(errors).size; // seeking back replays the run again: each failure is said once
    if (distinct > this.replayErrorsShown) {
      this.replayErrorsShown = distinct;
      this.notice(`Some recorded actions failed on replay: ${errors[errors.length - 1]}`);
    }
  }

  setPlaying(on) {
    this.playing = on;
    $("#play").textContent = on ? "❚❚" : "▶";
    $("#play").setAttribute("aria-label", on ? "Pause" : "Play");
  }

  // ---------- runs and actions ----------
  /** Starts a run. Throws (changing nothing) if the simulator refuses it. */
  newRun(layout, seed, actions) {
    const timeline = new ShardedTimeline(this.backend, layout, seed, actions);
    if (this.timeline) this.timeline.free();
    this.timeline = timeline;
    this.replayErrorsShown = 0;
    this.runVersion = (this.runVersion ?? 0) + 1;
    $("#sh-layout").value = layout;
    $("#seed").value = String(seed);
    this.selected = null;
    $("#inspector").hidden = true;
    this.checkResult = null;
    this.highlightOps = new Set();
    this.historyView.center = null;
    this.dirty = true;
    this.fillSelects();
  }

  fillSelects() {
    const state = this.timeline.sim.state();
    const groups = state.groups.filter((g) => g.id !== 0).map((g) => `<option value="${g.id}">${g.id}</option>`).join("");
    $("#sh-move-group").innerHTML = groups;
    $("#sh-group").innerHTML = groups;
    $("#sh-move-shard").innerHTML = state.shards.map((s) => `<option value="${s.shard}">${s.shard}</option>`).join("");
  }

  /** Does an action on the run (recorded for the timeline and share links). */
  act(op, ...args) {
    let result;
    try {
      result = this.timeline.act(op, ...args);
      this.runVersion++;
      this.notice("");
    } catch (err) {
      this.notice(err.message);
    }
    this.dirty = true;
    return result;
  }

  copyLink() {
    const { t, s } = this.timeline.position();
    const hash = encodeShardedRun({ layout: this.timeline.layout, seed: this.timeline.seed, actions: this.timeline.actions, at: t, atSteps: s, scenario: this.guide ? { id: this.guide.tour.id, step: this.guide.step } : null });
    history.replaceState(null, "", hash);
    navigator.clipboard?.writeText(location.href).catch(() => {});
    this.notice("Link to this moment copied.");
    return hash;
  }

  // ---------- the guided tour ----------
  /**
   * Starts a tour at step `step` (0 for its start): the steps before it are planned and replayed
   * without playing. Without `at` that step then plays; with `at` (a link's moment) the run shows
   * `at`, and the step goes on playing if `at` is before its end.
   */
  startTour(id, { step = 0, at = null } = {}) {
    const tour = SHARDED_SCENARIOS.find((t) => t.id === id);
    if (!tour) { this.notice(`No sharded tour ${id}`); return; }
    this.newRun(tour.layout, tour.seed, []);
    this.guide = { tour, step: -1, facts: {}, failed: [] };
    $("#guide").hidden = false;
    const last = Math.max(0, Math.min(Math.trunc(step) || 0, tour.steps.length - 1));
    if (at == null) {
      for (let i = 0; i < last; i++) this.timeline.seekWithinBudget(this.planStep());
      this.nextStep();
      return;
    }
    let end = 0;
    for (let i = 0; i <= last; i++) {
      end = this.planStep();
      this.timeline.seekWithinBudget(i < last ? end : at);
    }
    if (this.timeline.display < end) {
      this.stopAt = end;
      this.setPlaying(true);
    } else {
      this.guide.failed = failedClaims(tour.steps[last], this.guide.facts, this.timeline.sim);
    }
    this.renderGuide();
  }

  stopTour() {
    this.guide = null;
    this.stopAt = null;
    $("#guide").hidden = true;
  }

  /** Plans the next step on a scratch copy of the run, adopts its actions, and plays to its end. */
  nextStep() {
    const g = this.guide;
    if (!g || g.step + 1 >= g.tour.steps.length) return;
    this.stopAt = this.planStep();
    this.setPlaying(true);
    this.renderGuide();
  }

  /** Plans the tour's next step from the moment shown and adopts its actions; returns where the step ends. */
  planStep() {
    const g = this.guide;
    g.step++;
    const step = g.tour.steps[g.step];
    const scratch = this.timeline.scratch(this.timeline.display);
    try { step.plan(planContext(scratch), g.facts); } catch (err) { g.facts.miss = err.message; }
    this.timeline.setActions(scratch.actions);
    this.runVersion++;
    const end = scratch.display;
    scratch.free();
    g.checked = false;
    return end;
  }

  renderGuide() {
    const g = this.guide;
    if (!g) return;
    const step = g.tour.steps[g.step];
    const last = g.step + 1 >= g.tour.steps.length;
    const status = this.stopAt != null ? `<p class="small muted">Playing…</p>` : g.failed.length ? `<p class="small" style="color:var(--danger)">Does not hold here: ${esc(g.failed.join("; "))}</p>` : `<p class="small" data-holds="1">✓ what this step says holds in this run</p>`;
    setHTML($("#guide"), `<div class="guide-scroll"><h2>${esc(g.tour.title)} <span class="muted small">${g.step + 1}/${g.tour.steps.length}</span></h2>
      <h3>${esc(step.title)}</h3>${step.text(g.facts)}<p class="small"><b>Watch:</b> ${esc(step.watch(g.facts))}</p>${status}
      <div class="row"><button class="btn primary" id="sh-next" ${this.stopAt != null || last ? "disabled" : ""}>${last ? "The end" : "Next ›"}</button>
      <button class="btn ghost" id="sh-close">Close</button></div></div>`);
    $("#sh-next").onclick = () => this.nextStep();
    $("#sh-close").onclick = () => this.stopTour();
  }

  // ---------- the frame loop ----------
  start() {
    let last = performance.now();
    const frame = (t) => {
      const dt = Math.min(100, t - last);
      last = t;
      this.frames.push(t);
      if (this.frames.length > 120) this.frames.shift();
      const t0 = performance.now();
      if (this.playing) {
        let target = this.timeline.display + dt * (this.stopAt != null ? Math.max(this.speed(), 0.3) : this.speed());
        if (this.stopAt != null && target >= this.stopAt) { target = this.stopAt; }
        if (this.timeline.display >= LINK_MAX_MS) this.sayRunEnds();
        target = Math.min(target, LINK_MAX_MS);
        // at most SIM_BUDGET_MS of simulation per frame, in slices: when the
        // machine cannot keep up, virtual time runs slower instead of frames being lost
        target = Math.floor(target);
        const slice = Math.max(1, Math.ceil((target - this.timeline.display) / 4));
        while (this.timeline.display < target && performance.now() - t0 < SIM_BUDGET_MS) {
          this.timeline.runUntil(Math.min(target, this.timeline.display + slice));
        }
        if (this.stopAt != null && this.timeline.display >= this.stopAt) {
          this.stopAt = null;
          this.setPlaying(false);
          if (this.guide) { this.guide.failed = failedClaims(this.guide.tour.steps[this.guide.step], this.guide.facts, this.timeline.sim); this.renderGuide(); }
        }
        this.dirty = true;
      }
      this.reportReplayErrors();
      const t1 = performance.now();
      if (this.dirty || !this.state) this.state = this.timeline.sim.state();
      // the history, read incrementally, at most as often as it is cheap to
      if (this.dirty && t1 - this.historyAt > Math.max(50, 12 * this.historyCost)) {
        this.history = this.historyCache.sync(this.timeline.sim);
        this.historyAt = performance.now();
        this.historyCost = this.historyAt - t1;
        this.historyAsOf = this.state.now;
      }
      const t2 = performance.now();
      this.draw();
      const t3 = performance.now();
      const avg = (a, x) => a * 0.9 + x * 0.1;
      this.stats.simMs = avg(this.stats.simMs, t1 - t0);
      this.stats.dataMs = avg(this.stats.dataMs, t2 - t1);
      this.stats.drawMs = avg(this.stats.drawMs, t3 - t2);
      if (t - (this.lastPanels ?? 0) > 200) { this.refreshPanels(); this.lastPanels = t; }
      this.dirty = false;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  draw() {
    const c = this.canvas, dpr = devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    this.ctx2d.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.layout = draw(this.ctx2d, w, h, this.state, this.theme, this.selected, this.state.now);
    if (this.dirty) this.historyView.draw({ history: this.history, display: this.state.now, asOf: Math.min(this.state.now, this.historyAsOf ?? this.state.now), highlight: this.highlightOps });
    setText($("#clock"), `${(this.state.now / 1000).toFixed(3)} s`);
    const end = this.timeline.end;
    $("#timeline").value = String(end > 0 ? Math.round((this.state.now / end) * 1000) : 0);
    $("#scrub-fill").style.width = `${end > 0 ? (this.state.now / end) * 100 : 0}%`;
    setText($("#end-time"), `${(end / 1000).toFixed(1)} s`);
  }

  refreshPanels(force = false) {
    const s = this.state;
    if (!s) return;
    const sim = this.timeline.sim;
    // correctness: check() costs more as the history grows (tens of ms with
    // thousands of operations), so a worker runs it on a replica of the run
    // (check-worker.js); where workers are not available, the main thread
    // does, at most ~4% of the time
    const now = performance.now();
    if (this.checker) this.askCheck(now);
    else if (force || !this.checkResult || now - this.lastCheckAt > Math.max(500, 25 * this.stats.checkMs)) {
      const t0 = performance.now();
      this.checkResult = sim.check();
      this.checkAt = this.timeline.display;
      this.stats.checkMs = performance.now() - t0;
      this.lastCheckAt = now;
    }
    if (this.checkResult) this.renderCheck(this.checkResult);
    // inspector
    let inspect = "Click a host to crash or restart it, a shard to move it.";
    let actions = "";
    if (this.selected?.type === "host") {
      const h = s.hosts[this.selected.id - 1];
      inspect = `Host ${h.id} is ${h.up ? "up" : "down"} and holds ${h.replicas.map((r) => `${groupName(r.group)} (${r.role}${r.role === "down" ? "" : `, term ${r.term}`}${r.followerReadsServed ? `, ${r.followerReadsServed} follower reads served` : ""})`).join(", ")}. A crash stops every one of them.`;
      actions = h.up ? `<button class="btn small danger" data-act="crash" data-host="${h.id}">Crash host ${h.id}</button><button class="btn small" data-act="isolate" data-host="${h.id}">Isolate</button>` : `<button class="btn small" data-act="restart" data-host="${h.id}">Restart host ${h.id}</button>`;
    } else if (this.selected?.type === "shard") {
      const sh = s.shards[this.selected.id];
      inspect = `Shard ${sh.shard}: owner ${sh.owner ? groupName(sh.owner) : "none"}, ${sh.status}${sh.from ? ` (from group ${sh.from})` : ""}. Choose a group below and Move.`;
    }
    setText($("#sh-inspect"), inspect);
    const box = $("#sh-inspect-actions");
    if (box.__html !== actions) {
      box.innerHTML = actions; box.__html = actions;
      for (const b of box.querySelectorAll("button")) {
        b.onclick = () => {
          const host = Number(b.dataset.host);
          if (b.dataset.act === "isolate") this.act("partition", [[host], s.hosts.map((x) => x.id).filter((x) => x !== host)]);
          else this.act(b.dataset.act, host);
          this.refreshPanels(true);
        };
      }
    }
    const key = $("#sh-op-key").value;
    if (key) {
      const shard = sim.shardOf(key);
      const owner = s.shards[shard].owner;
      setText($("#sh-route"), `"${key}" is in shard ${shard}, ${owner ? `owned by group ${owner}` : "not assigned yet"}.`);
    }
    $("#sh-workload").checked = s.workload;
    setHTML($("#sh-groups"), s.groups.map((g) => `<li data-group="${g.id}"><i style="display:inline-block;width:10px;height:10px;border-radius:2px;background:${groupColor(g.id, "var(--ink)")}"></i> ${esc(groupName(g.id))} · hosts ${g.hosts.join(", ")} · leader ${g.leader ?? "none"}${g.id ? ` · ${g.joined ? `config ${g.configNum ?? "–"} · shards ${g.shards.map((x) => (x.status === "serving" ? x.shard : `${x.shard} (${x.status})`)).join(", ") || "none"}` : g.retired ? "retired (left; its replicas are gone)" : "not joined"}` : ` · config ${g.configNum ?? "–"}`}</li>`).join(""));
    // the last operations (history() is read only when the run moved, a few times a second)
    if (this.opsAt !== s.now) {
      this.opsAt = s.now;
      const ops = this.history;
      const owner = (shard) => s.shards[shard]?.owner;
      setHTML($("#sh-ops"), ops.slice(-8).reverse().map((o) => `<li data-status="${o.status}">${o.client ? `c${o.client}` : "you"} ${o.kind} ${esc(o.key)}${o.value != null ? ` ${esc(o.value)}` : ""} → shard ${o.shard} (group ${owner(o.shard) ?? "–"}): ${o.status}${o.kind === "get" && o.status === "ok" ? ` = ${o.output == null ? "missing" : esc(o.output)}` : ""}${o.completedAt != null ? `, ${o.completedAt - o.invokedAt} ms` : ""}</li>`).join("") || `<li class="muted">none yet</li>`);
    }
    const admin = [
      ...s.admin.done.slice(-6).map((d) => `<li data-outcome="${d.outcome}">${esc(d.op)}: ${d.outcome}${d.text ? ` (${esc(d.text)})` : ""} at ${(d.endedAt / 1000).toFixed(2)} s</li>`),
      ...(s.admin.running ? [`<li>${esc(s.admin.running)}: running…</li>`] : []),
      ...s.admin.queued.map((q) => `<li>${esc(q)}: waiting</li>`),
    ];
    setHTML($("#sh-admin"), admin.join("") || `<li class="muted">none yet</li>`);
    this.inspector.update();
    this.eventLog.update();
  }

  /** The correctness card: Raft safety per group, linearizability across moves; the operations a violation names are outlined in the history. */
  renderCheck(c) {
    this.highlightOps = new Set(c.linearizability.ok ? [] : c.linearizability.ops);
    const pill = $("#check-pill");
    setText(pill, c.ok ? "OK" : "VIOLATION");
    pill.className = `pill ${c.ok ? "ok" : "bad"}`;
    setText($("#check-text"), `${c.linearizability.text} (checked at ${(this.checkAt / 1000).toFixed(2)} s)`);
    setHTML($("#check-list"), [
      ...c.groups.map((g) => `<li data-group="${g.group}" class="${g.ok ? "holds" : "bad"}">${esc(groupName(g.group))}: ${g.ok ? "Raft safety holds (election safety, log matching, leader completeness, state machine safety)" : esc(g.violations.join("; "))}</li>`),
      `<li data-check="linearizability" class="${c.linearizability.ok ? "holds" : "bad"}">linearizability across moves: ${c.linearizability.ok ? (c.linearizability.decided ? "holds" : "undecided") : esc(c.linearizability.text)}</li>`,
      ...c.other.map((v) => `<li class="bad">${esc(v)}</li>`),
    ].join(""));
  }

  /** Starts the checker worker (null where module workers are not available: the main thread checks). */
  startChecker() {
    try {
      const worker = new Worker(new URL("./check-worker.js", import.meta.url), { type: "module" });
      this.checker = { worker, pending: null, askedAt: 0, seq: 0 };
      worker.onmessage = ({ data }) => this.onCheck(data);
      worker.onerror = (e) => { console.warn("the checker worker failed; checking on the main thread", e.message); this.checker = null; };
    } catch (err) {
      this.checker = null;
    }
  }

  /** Asks the worker to check the moment shown: one request at a time, and at most every max(0.5 s, 5 × the last check's cost), so that on a machine with few cores the worker keeps to about a fifth of one. */
  askCheck(now) {
    const c = this.checker;
    if (c.pending || now - c.askedAt < Math.max(500, 5 * this.stats.checkMs)) return;
    const t = this.timeline.display;
    if (this.checkResult && this.checkAt === t && this.checkVersion === this.runVersion) return;
    c.askedAt = now;
    c.pending = { id: ++c.seq, version: this.runVersion, t };
    const tl = this.timeline;
    c.worker.postMessage({ id: c.seq, layout: tl.layout, seed: tl.seed, actions: tl.actions, t });
  }

  /** A result from the worker: shown if it is of this run and not of a moment after the one shown. */
  onCheck(data) {
    const c = this.checker;
    const asked = c?.pending;
    if (!asked || asked.id !== data.id) return;
    c.pending = null;
    if (data.error) { console.warn("check failed in the worker:", data.error); return; }
    if (asked.version !== this.runVersion || data.t > this.timeline.display) return;
    this.checkResult = data.result;
    this.checkAt = data.t;
    this.checkVersion = asked.version;
    this.stats.checkMs = data.ms;
    this.refreshPanels();
  }

  fps() {
    const f = this.frames;
    return f.length > 1 ? ((f.length - 1) * 1000) / (f[f.length - 1] - f[0]) : 0;
  }

  frameStats() { return { ...this.stats, inFlight: this.state?.inFlight.length ?? 0 }; }
}
