// The guided-scenario side panel. A step is planned on a scratch copy of the
// run (see scenarios.js); its actions become the recorded future of the real
// run, which then plays up to the step's end while the panel explains.

import { $, el, esc } from "./dom.js";
import { SCENARIOS, planContext, failedClaims } from "./scenarios.js";
import { SHARDED_SCENARIOS } from "./sharded/tours.js";
import { DEFAULT_CONFIG } from "./share.js";

/** The settings in which a tour differs from the page's defaults, in words. */
export function describeConfig(c) {
  const d = DEFAULT_CONFIG;
  const out = [];
  if (c.preVote === false) out.push("PreVote off");
  if (c.checkQuorum === false) out.push("CheckQuorum off");
  if (c.leaseReads) out.push("lease reads");
  if (c.followerReads) out.push("follower reads");
  if (c.snapshotEvery !== d.snapshotEvery) out.push(`a snapshot every ${c.snapshotEvery} entries`);
  if (c.snapshotChunkBytes != null) out.push(`snapshots sent in ${c.snapshotChunkBytes}-byte chunks`);
  if (c.maxEntriesPerMessage != null) out.push(`${c.maxEntriesPerMessage === 1 ? "one entry" : `at most ${c.maxEntriesPerMessage} entries`} per AppendEntries`);
  if (String(c.latencyMs) !== String(d.latencyMs)) out.push(c.latencyMs[0] === c.latencyMs[1] ? `every message takes ${c.latencyMs[0]} ms` : `latency ${c.latencyMs[0]}–${c.latencyMs[1]} ms`);
  if (c.diskLatencyMs != null) out.push(c.diskLatencyMs[0] === c.diskLatencyMs[1] ? `a disk write takes ${c.diskLatencyMs[0]} ms` : `disk writes take ${c.diskLatencyMs[0]}–${c.diskLatencyMs[1]} ms`);
  return out;
}

export function scenarioById(id) { return SCENARIOS.find((s) => s.id === id) ?? null; }

export class Guide {
  constructor(app) {
    this.app = app;
    this.root = $("#guide");
    this.scenario = null;
    this.step = 0; // 0 = the intro card; 1..n = steps
    this.ends = []; // ends[i] = timeline position at the end of step i (ends[0] = start)
    this.vars = []; // vars[i] = the facts (names and figures) after step i
    this.hashes = []; // hashes[i] = trace hash of the planned run at the end of step i
    this.playing = false;
    this.root.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-g]");
      if (!b) return;
      const a = b.dataset.g;
      if (a === "close") this.close();
      else if (a === "next") this.next();
      else if (a === "back") this.back();
      else if (a === "replay") this.replay();
      else if (a === "skip") this.skip();
      else if (a === "list") this.showList();
      else if (a === "start") this.start(b.dataset.id);
    });
  }

  get open() { return !this.root.hidden; }

  toggleList() { if (this.open) this.close(); else this.showList(); }

  showList() {
    this.scenario = null;
    this.root.hidden = false;
    this.root.replaceChildren(
      el("div", { class: "row", style: "margin:0" }, el("span", { class: "kicker" }, "Guided tours"), el("button", { class: "btn ghost small", "data-g": "close", style: "margin-left:auto", "aria-label": "Close" }, "✕")),
      el("p", { class: "small muted", style: "margin:0" }, "Each tour starts a fresh cluster and walks through one idea of Raft in a few steps. You can pause, step, scrub and poke at any moment."),
      el("ul", { class: "scen-list" }, ...SCENARIOS.map((s) => el("li", {}, el("button", { "data-g": "start", "data-id": s.id }, el("b", {}, s.title), el("span", {}, s.blurb))))),
      el("p", { class: "small muted", style: "margin:0" }, "In the sharded mode (a controller and several groups):"),
      // a link: the sharded mode is another app, started by the page from the hash
      el("ul", { class: "scen-list sharded" }, ...SHARDED_SCENARIOS.map((s) => el("li", {}, el("a", { class: "btn", href: `#mode=sharded&sc=${s.id}.0`, "data-sharded-tour": s.id }, el("b", {}, s.title), el("span", {}, ` ${s.blurb}`))))),
    );
    this.app.layoutChanged();
  }

  close() {
    this.root.hidden = true;
    this.scenario = null;
    this.app.playback.stopAt = null;
    this.app.scenarioTag = null;
    this.app.layoutChanged();
  }

  /** Start a scenario: a fresh run with its config, at its intro card (or straight at `step`). */
  start(id, { step = 0, cursor = null } = {}) {
    const s = scenarioById(id);
    if (!s) { this.app.toast(`No scenario "${id}"`, { error: true }); return; }
    this.scenario = s;
    // a tour's configuration is complete: settings changed on the page do not leak into it
    this.app.newRun({ ...s.config }, [], null, { keepGuide: true });
    this.ends = [this.app.timeline.position()];
    this.vars = [{}];
    this.hashes = [this.app.timeline.sim.traceHash()];
    this.step = 0;
    this.root.hidden = false;
    this.app.layoutChanged();
    if (step > 0) {
      // rebuild the names and the run up to that step without playing it
      for (let i = 1; i <= step && i <= s.steps.length; i++) this.plan(i);
      this.step = Math.min(step, s.steps.length);
      this.app.timeline.seekPosition(cursor ?? this.ends[this.step]);
    }
    this.app.scenarioTag = { id: s.id, step: this.step };
    this.render();
  }

  plan(i) {
    const tl = this.app.timeline;
    const s = this.scenario;
    tl.seekPosition(this.ends[i - 1]);
    const scratch = tl.scratch();
    const facts = { ...this.vars[i - 1] };
    delete facts.miss;
    try {
      s.steps[i - 1].plan(planContext(scratch), facts);
    } catch (err) {
      facts.miss = `the step failed: ${err.message}`;
      console.warn("scenario step failed", err);
    }
    // say so if what the text claims did not happen in this run
    if (!facts.miss) {
      const failed = failedClaims(s.steps[i - 1], facts, scratch.sim);
      if (failed.length) facts.miss = failed.join("; ");
    }
    const fresh = scratch.actions.slice(tl.applied);
    this.ends[i] = scratch.position();
    this.hashes[i] = scratch.sim.traceHash(); // the played run must reach the same point (checked by the tests)
    this.vars[i] = facts;
    scratch.free();
    tl.adoptFuture(fresh);
    this.ends.length = i + 1;
    this.vars.length = i + 1;
    this.hashes.length = i + 1;
  }

  next() {
    const s = this.scenario;
    if (!s) return;
    if (this.step >= s.steps.length) { this.close(); return; }
    const i = this.step + 1;
    this.plan(i);
    this.step = i;
    this.app.scenarioTag = { id: s.id, step: i };
    this.app.playback.playTo(this.ends[i]);
    this.render();
  }

  back() {
    if (!this.scenario || this.step === 0) return;
    this.step--;
    this.app.playback.stopAt = null;
    this.app.playback.pause();
    this.app.timeline.seekPosition(this.ends[this.step]);
    this.app.scenarioTag = { id: this.scenario.id, step: this.step };
    this.app.dirty = true;
    this.render();
  }

  replay() {
    if (!this.scenario || this.step === 0) return;
    this.app.timeline.seekPosition(this.ends[this.step - 1]);
    this.app.playback.playTo(this.ends[this.step]);
  }

  skip() {
    if (!this.scenario || !this.app.playback.stopAt) return;
    this.app.playback.finishPlayTo();
  }

  /** Called by the app every few frames so the status line follows playback. */
  tick() {
    if (!this.scenario) return;
    const st = $("#g-status", this.root);
    if (!st) return;
    const playing = !!this.app.playback.stopAt;
    const text = playing ? `Playing this step at ${this.app.playback.speedLabel()} … ` : this.step > 0 ? `End of this step. Explore freely; Next continues the tour from the end of this step.` : "";
    if (st.__t !== text) {
      st.__t = text;
      st.replaceChildren(text);
      if (playing) st.append(el("button", { class: "btn small", "data-g": "skip" }, "Skip to end ▸▸"));
    }
  }

  render() {
    const s = this.scenario;
    if (!s) return;
    const i = this.step;
    const facts = this.vars[i] ?? {};
    const nav = el("div", { class: "nav" },
      el("button", { class: "btn", "data-g": "back", disabled: i === 0 ? true : null, title: "Previous step" }, "◂ Back"),
      i > 0 ? el("button", { class: "btn ghost", "data-g": "replay", title: "Play this step again" }, "↻ Replay") : null,
      el("span", { class: "spacer" }),
      el("button", { class: "btn primary", "data-g": "next", id: "g-next" }, i === 0 ? "Start ▸" : i >= s.steps.length ? "Finish" : "Next ▸"),
    );
    const progress = el("div", { class: "progress", "aria-hidden": "true" }, ...s.steps.map((_, k) => el("i", { class: k < i ? "done" : "" })));
    const body = el("div", { class: "step-text" });
    const watch = el("div", { class: "watch" });
    let title;
    if (i === 0) {
      title = s.title;
      body.innerHTML = `<p>${esc(s.blurb)}</p><p class="muted small">${s.steps.length} steps. Each step performs a few actions and plays the cluster forward; the text says what to look at. A fresh ${s.config.nodes}-node cluster (seed ${s.config.seed}${describeConfig(s.config).map((x) => `, ${esc(x)}`).join("")}) is ready.</p>`;
      watch.hidden = true;
    } else {
      const step = s.steps[i - 1];
      title = step.title;
      body.innerHTML = step.text(facts);
      const w = step.watch ? step.watch(facts) : "";
      watch.innerHTML = w ? `<b>Watch:</b> ${w}` : "";
      watch.hidden = !w;
    }
    this.root.replaceChildren(
      el("div", { class: "row", style: "margin:0" },
        el("span", { class: "kicker" }, i === 0 ? "Guided tour" : `Step ${i} of ${s.steps.length}`),
        el("button", { class: "btn ghost small", "data-g": "list", style: "margin-left:auto", title: "All tours" }, "All tours"),
        el("button", { class: "btn ghost small", "data-g": "close", "aria-label": "Close" }, "✕")),
      progress,
      el("div", { class: "guide-scroll" },
        el("div", { class: "kicker", style: "text-transform:none;letter-spacing:0;margin-bottom:4px" }, s.title),
        el("h3", { id: "g-title" }, title),
        body,
        watch),
      el("div", { class: "status-line", id: "g-status" }),
      nav,
    );
    this.tick();
  }
}
