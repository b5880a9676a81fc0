// The app: the recorded run the page shows and what the page last read of
// it, shared by three parts that each own one concern (playback.js: how
// virtual time moves; refresh.js: reading the simulation and drawing;
// controls.js: what a person does), the canvases and the side cards. It
// keeps the things every part needs: starting a run, recording an action,
// the selection, the notice bar, the layout and the share link. The page
// never decides anything about Raft: it draws what state() returns and
// forwards clicks as actions.

import { Timeline } from "./timeline.js";
import { encodeRun, decodeRun, DEFAULT_CONFIG } from "./share.js";
import { Theme } from "./theme.js";
import { ClusterView } from "./cluster-view.js";
import { HistoryView } from "./history-view.js";
import { Inspector, ClientsCard, NetworkCard, CheckCard, EventLog } from "./panels.js";
import { Guide, scenarioById } from "./guide.js";
import { Playback } from "./playback.js";
import { Refresh } from "./refresh.js";
import { Controls } from "./controls.js";
import { $, setHTML, toggle, toast } from "./dom.js";

export class App {
  constructor(backend) {
    this.backend = backend;
    this.theme = new Theme();
    this.cluster = new ClusterView($("#cluster"), this.theme);
    this.historyView = new HistoryView($("#history"), this.theme);
    /** The recorded run (see timeline.js). */
    this.timeline = null;
    // what the page last read of the run (refresh.js writes these)
    this.state = null;
    this.historyCache = [];
    this.clientsCache = [];
    this.checkResult = null;
    /** Operations involved in a linearizability violation, outlined in the history. */
    this.highlightOps = new Set();
    // what the person points at
    this.selected = null;
    this.hover = null;
    /** Something changed since the last frame was drawn. */
    this.dirty = true;
    this.showFps = false;
    this.scenarioTag = null;
    this.noticeKind = null;
    this.hashTimer = 0;
    this.playback = new Playback(this);
    this.refresh = new Refresh(this);
    this.controls = new Controls(this);
    this.network = this.network.bind(this);
    this.inspector = new Inspector(this);
    this.clientsCard = new ClientsCard(this);
    this.networkCard = new NetworkCard(this);
    this.checkCard = new CheckCard(this);
    this.eventLog = new EventLog(this);
    this.guide = new Guide(this);
  }

  toast(msg, opts) { toast(msg, opts); }

  start() {
    this.controls.wire();
    if (!this.loadFromHash()) this.newRun({ ...DEFAULT_CONFIG });
    $("#boot").hidden = true;
    requestAnimationFrame((t) => this.frame(t));
    if (!location.hash && !localStorage.getItem("distribkv.introSeen")) $("#intro").showModal();
  }

  // ---------- the frame ----------
  frame(ts) {
    requestAnimationFrame((t) => this.frame(t));
    try {
      this.playback.tick(ts);
      this.reportReplayErrors();
      this.refresh.frame(ts);
    } catch (err) {
      // keep the loop alive; report each distinct problem once
      const key = String(err?.message ?? err);
      this.reported ??= new Set();
      if (!this.reported.has(key)) { this.reported.add(key); console.error("frame failed:", err); toast(`Drawing failed: ${key}`, { error: true, ms: 6000 }); }
      this.playback.pause();
    }
  }

  fps() { return this.playback.fps(); }

  /** Say when a recorded action (a link's) failed on replay: the simulator refused it, and the run went on without it. */
  reportReplayErrors() {
    const errors = this.timeline.replayErrors;
    // seeking back replays the run again: each failure is said once
    const distinct = new Set(errors).size;
    if (distinct > this.replayErrorsShown) {
      this.replayErrorsShown = distinct;
      toast(`Some recorded actions failed on replay: ${errors[errors.length - 1]}`, { error: true, ms: 6000 });
    }
  }

  /** Frame timings (the frame-rate corner, scripts/e2e/fps.mjs). */
  frameStats() {
    const refresh = this.refresh;
    return { ...this.playback.frameStats(), dataMs: refresh.dataMs, drawMs: refresh.drawMs, checkMs: refresh.checkCost, inFlight: this.state?.inFlight.length ?? 0 };
  }

  // ---------- runs ----------
  /** The settings a new run starts from: those of the last run the person set up (a guided tour's own settings do not carry over). */
  baseConfig() { return { ...(this.userConfig ?? DEFAULT_CONFIG) }; }

  /** Start a run. Throws (changing nothing) if the simulator refuses the config or the cursor takes too long to replay. */
  newRun(config, actions = [], cursor = null, { keepGuide = false } = {}) {
    const cfg = { ...DEFAULT_CONFIG, ...config };
    const timeline = new Timeline(this.backend, cfg, actions);
    // a link's moment (the only caller with a cursor): a run too dense to replay in time is refused
    try { if (cursor) timeline.seekWithinBudget(cursor); } catch (err) { timeline.free(); throw err; }
    if (this.timeline) this.timeline.free();
    if (!keepGuide) this.userConfig = { ...cfg };
    this.timeline = timeline;
    this.replayErrorsShown = 0;
    this.reportReplayErrors();
    this.refresh.reset();
    this.checkResult = null;
    this.highlightOps = new Set();
    this.historyView.center = null;
    this.selected = null;
    this.networkCard.draft = null;
    this.playback.stopAt = null;
    if (!keepGuide) { this.scenarioTag = null; if (this.guide.open) this.guide.close(); }
    $("#nodes").value = String(cfg.nodes);
    $("#seed").value = String(cfg.seed);
    this.hideNotice("violation");
    this.dirty = true;
    this.refresh.data(true);
    this.scheduleHash();
  }

  /** Perform an action now (recorded). Errors from the simulation become a toast. */
  act(op, ...args) {
    const tl = this.timeline;
    const hadFuture = tl.hasFuture;
    let result;
    this.lastActOk = false;
    try {
      result = tl.act(op, ...args);
    } catch (err) {
      toast(err.message || String(err), { error: true });
      return undefined;
    }
    this.lastActOk = true;
    if (hadFuture) toast("Acted in the past: the rest of the recorded run was discarded.");
    this.playback.stopAt = null;
    this.dirty = true;
    this.refresh.data(true);
    this.scheduleHash();
    return result;
  }

  /** The network settings in effect: the run's config, then the recorded actions that changed them. */
  network() {
    const tl = this.timeline;
    const net = { dropRate: tl.config.dropRate ?? 0, duplicateRate: tl.config.duplicateRate ?? 0, latencyMs: [...(tl.config.latencyMs ?? [5, 20])] };
    for (let i = 0; i < tl.applied; i++) {
      const a = tl.actions[i];
      if (a.op === "setDropRate") net.dropRate = a.args[0];
      else if (a.op === "setDuplicateRate") net.duplicateRate = a.args[0];
      else if (a.op === "setLatency") net.latencyMs = [a.args[0], a.args[1]];
    }
    return net;
  }

  /** The workload in effect (the last recorded setWorkload). */
  workload() {
    const tl = this.timeline;
    let w = { clients: 0 };
    for (let i = 0; i < tl.applied; i++) if (tl.actions[i].op === "setWorkload") w = tl.actions[i].args[0];
    return w;
  }

  // ---------- sharing ----------
  shareHash() {
    const tl = this.timeline;
    return encodeRun({ config: tl.config, actions: tl.actions.slice(0, tl.applied), cursor: tl.position(), scenario: this.scenarioTag });
  }

  scheduleHash() {
    clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(() => this.writeHash(), 250);
  }

  writeHash() {
    const h = this.shareHash();
    if (location.hash !== h) { this.ownHash = h; history.replaceState(null, "", h); }
  }

  async copyLink() {
    this.writeHash();
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      toast("Link copied: it opens this exact run at this moment.");
    } catch {
      window.prompt("Copy this link:", url);
    }
  }

  /**
   * Open the run the address's hash describes (a guided tour's at its step); false if it describes none,
   * or if it cannot be read or the simulator refuses its config (then it says so; the run shown is kept).
   */
  loadFromHash() {
    try {
      return this.openRun(decodeRun(location.hash));
    } catch (err) {
      toast(`Could not read the link: ${err.message}`, { error: true, ms: 6000 });
      return false;
    }
  }

  openRun(run) {
    if (!run) return false;
    if (run.scenario && !scenarioById(run.scenario.id)) toast(`The link's guided tour "${run.scenario.id}" does not exist: its run opens without it.`, { error: true, ms: 6000 });
    if (run.scenario && scenarioById(run.scenario.id)) {
      this.guide.start(run.scenario.id, { step: run.scenario.step, cursor: run.cursor });
      if (run.tourOnly) return true;
      const tl = this.timeline;
      // the link's actions are a prefix of the tour's plan up to that step: keep the plan (and its future)
      const key = (a) => JSON.stringify([a.t, a.s, a.op, a.args]);
      const canon = (c) => JSON.stringify(Object.keys(c).sort().map((k) => [k, c[k]]));
      const same = run.actions.length <= tl.actions.length && run.actions.every((a, i) => key(a) === key(tl.actions[i]))
        && canon(tl.config) === canon(run.config);
      if (!same) {
        try { this.newRun(run.config, run.actions, run.cursor, { keepGuide: true }); } catch (err) { this.guide.close(); throw err; }
        this.scenarioTag = run.scenario;
      }
      return true;
    }
    this.newRun(run.config, run.actions, run.cursor);
    return true;
  }

  // ---------- selection ----------
  select(sel) {
    this.selected = sel;
    this.dirty = true;
    this.inspector.update(true);
    if (document.body.classList.contains("narrow")) document.body.classList.toggle("side-open", !!sel);
  }

  selectNode(id) { if (this.state && id >= 1 && id <= this.state.nodes.length) this.select({ type: "node", id }); }

  // ---------- the notice bar ----------
  showNotice(kind, html, actions = [], error = false) {
    const n = $("#notice");
    this.noticeKind = kind;
    setHTML($("#notice-text"), html);
    const key = actions.map((a) => a.label).join("|");
    const box = $("#notice-actions");
    if (box.__key !== key) {
      box.__key = key;
      box.replaceChildren(...actions.map((a) => { const b = document.createElement("button"); b.className = "btn small"; b.textContent = a.label; b.onclick = a.fn; return b; }));
    }
    toggle(n, "error", error);
    if (n.hidden) { n.hidden = false; this.layoutChanged(); }
  }

  hideNotice(kind) {
    const n = $("#notice");
    if (!n.hidden && (!kind || this.noticeKind === kind)) { n.hidden = true; this.noticeKind = null; this.layoutChanged(); }
  }

  // ---------- layout ----------
  layoutChanged() { this.dirty = true; this.cluster.g = null; if (this.narrowMq) this.updateDrawer(); }

  /** Side panel as a drawer: in narrow windows, and in medium ones while a tour takes the left side. */
  updateDrawer() {
    const drawer = this.narrowMq.matches || (this.mediumMq.matches && !$("#guide").hidden);
    const b = document.body;
    if (b.classList.contains("drawer") !== drawer) {
      b.classList.toggle("drawer", drawer);
      b.classList.toggle("narrow", drawer);
      if (!drawer) b.classList.remove("side-open");
      this.cluster.g = null;
      this.dirty = true;
    }
  }
}
