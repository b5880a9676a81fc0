// The page: loads the simulation (the wasm build, or the JS mock with ?mock),
// owns the recorded run, drives time on requestAnimationFrame, and wires the
// controls. Drawing lives in cluster-view.js / history-view.js, the cards in
// panels.js, the tours in guide.js. The page never decides anything about Raft:
// it draws what state() returns and forwards clicks as actions.

import { loadBackend } from "./sim-adapter.js";
import { Timeline } from "./timeline.js";
import { encodeRun, decodeRun, DEFAULT_CONFIG } from "./share.js";
import { Theme } from "./theme.js";
import { ClusterView } from "./cluster-view.js";
import { HistoryView, opLabel, commandLabel, sessionText } from "./history-view.js";
import { Inspector, ClientsCard, NetworkCard, CheckCard, EventLog } from "./panels.js";
import { Guide, scenarioById } from "./guide.js";
import { $, $$, setText, setHTML, toggle, esc, fmtTime, fmtShort, toast } from "./dom.js";
import { MESSAGE_KINDS, ROLE_LABEL } from "./theme.js";

const params = new URLSearchParams(location.search);
const USE_MOCK = params.has("mock");
const MOCK_BUG = USE_MOCK && params.get("mock") ? params.get("mock") : null;

const CHECK_EVERY_MS = 400; // real ms between sim.check() calls, at least
const CHECK_SHARE = 25; // ... and at least this many times what the last check() took: it grows with the history
const SLOW_DATA_MS = 0; // real ms between history()/clients() fetches, at least (they are read incrementally, so every frame)
const SIM_BUDGET_MS = 9; // real ms of simulation per frame, at most (the rest is drawing)
const PANEL_MS = 110; // real ms between side panel refreshes

class App {
  constructor(backend) {
    this.backend = backend;
    this.theme = new Theme();
    this.cluster = new ClusterView($("#cluster"), this.theme);
    this.historyView = new HistoryView($("#history"), this.theme);
    this.timeline = null;
    this.playing = false;
    this.speed = 10 ** Number($("#speed").value);
    this.selected = null;
    this.hover = null;
    this.state = null;
    this.stateVersion = -1;
    this.historyCache = [];
    this.clientsCache = [];
    this.slowAt = 0;
    this.slowCost = 0;
    this.checkCost = 0;
    this.slowVersion = -1;
    this.checkAt = 0;
    this.checkVersion = -1;
    this.checkResult = null;
    this.violationAt = null;
    this.highlightOps = new Set();
    this.stopAt = null;
    this.scenarioTag = null;
    this.dirty = true;
    this.panelAt = 0;
    this.frames = new Float64Array(120);
    this.frameIdx = 0;
    this.frameCount = 0;
    this.lastTs = 0;
    this.simMs = 0;
    this.drawMs = 0;
    this.showFps = false;
    this.pendingSeek = null;
    this.scrubbing = false;
    this.hashTimer = 0;
    this.inspector = new Inspector(this);
    this.clientsCard = new ClientsCard(this);
    this.network = this.network.bind(this);
    this.networkCard = new NetworkCard(this);
    this.checkCard = new CheckCard(this);
    this.eventLog = new EventLog(this);
    this.guide = new Guide(this);
  }

  toast(msg, opts) { toast(msg, opts); }

  // ---------- runs ----------
  /** The settings a new run starts from: those of the last run the person set up (a guided tour's own settings do not carry over). */
  baseConfig() { return { ...(this.userConfig ?? DEFAULT_CONFIG) }; }

  newRun(config, actions = [], cursor = null, { keepGuide = false } = {}) {
    if (this.timeline) this.timeline.free();
    const cfg = { ...DEFAULT_CONFIG, ...config };
    if (!keepGuide) { this.userConfig = { ...cfg }; delete this.userConfig.mockBug; }
    if (MOCK_BUG) cfg.mockBug = MOCK_BUG;
    this.timeline = new Timeline(this.backend, cfg, actions);
    if (cursor) this.timeline.seekPosition(cursor);
    if (this.timeline.replayErrors.length) toast(`Some recorded actions failed on replay: ${this.timeline.replayErrors[0]}`, { error: true, ms: 6000 });
    this.stateVersion = -1;
    this.slowVersion = -1;
    this.checkVersion = -1;
    this.checkResult = null;
    this.violationAt = null;
    this.highlightOps = new Set();
    this.historyView.center = null;
    this.selected = null;
    this.networkCard.draft = null;
    this.stopAt = null;
    if (!keepGuide) { this.scenarioTag = null; if (this.guide.open) this.guide.close(); }
    $("#nodes").value = String(cfg.nodes);
    $("#seed").value = String(cfg.seed);
    this.hideNotice("violation");
    this.dirty = true;
    this.refreshData(true);
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
    if (this.stopAt) { this.stopAt = null; }
    this.dirty = true;
    this.refreshData(true);
    this.scheduleHash();
    return result;
  }

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

  workload() {
    const tl = this.timeline;
    let w = { clients: 0 };
    for (let i = 0; i < tl.applied; i++) if (tl.actions[i].op === "setWorkload") w = tl.actions[i].args[0];
    return w;
  }

  // ---------- time ----------
  play() {
    if (this.playing) return;
    this.playing = true;
    this.updatePlayButton();
  }
  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.updatePlayButton();
    this.scheduleHash();
  }
  togglePlay() { if (this.playing) { this.pause(); this.stopAt = null; } else this.play(); }
  updatePlayButton() {
    const b = $("#play");
    b.textContent = this.playing ? "❚❚" : "▶";
    b.setAttribute("aria-label", this.playing ? "Pause" : "Play");
  }
  setSpeedExp(x) {
    x = Math.max(-2, Math.min(2, x));
    $("#speed").value = String(x);
    this.speed = 10 ** x;
    setText($("#speed-out"), this.speedLabel());
  }
  speedLabel(s = this.speed) {
    return `${s < 0.1 ? s.toFixed(2) : s < 1 ? s.toFixed(1) : s < 10 ? s.toFixed(1) : Math.round(s)}×`;
  }

  /** Play the run up to a position (a guided step's end) at a speed that takes a few seconds, then stop exactly there. */
  playTo(end) {
    const d = end.display - this.timeline.display;
    if (d <= 0) { this.timeline.seekPosition(end); this.dirty = true; return; }
    const speed = Math.max(0.02, Math.min(3, d / 5000));
    this.setSpeedExp(Math.log10(speed));
    this.stopAt = end;
    this.play();
  }
  finishPlayTo() {
    const end = this.stopAt;
    this.stopAt = null;
    if (end) this.timeline.seekPosition(end);
    this.pause();
    this.dirty = true;
  }

  step() {
    this.pause();
    this.stopAt = null;
    const ev = this.timeline.stepOnce();
    this.dirty = true;
    if (!ev) toast("Nothing is scheduled.");
    else toast(`${fmtTime(ev.at)} · ${ev.node ?? ""} ${ev.text || ev.kind}`, { ms: 1800 });
    this.scheduleHash();
  }

  /** Roughly how long (real ms) showing virtual time t would take: going back replays the run from the start. */
  seekCost(t) {
    const tl = this.timeline;
    return t < tl.display ? t * (this.replayRate ?? 0.002) : (t - tl.display) * (this.replayRate ?? 0.002);
  }

  seek(t) {
    this.stopAt = null;
    const t0 = performance.now();
    const rebuilds = t < this.timeline.display;
    this.timeline.seek(t);
    const spent = performance.now() - t0;
    if (rebuilds && t > 200) this.replayRate = spent / t;
    this.dirty = true;
    this.scheduleHash();
  }

  // ---------- sharing ----------
  shareHash() {
    const tl = this.timeline;
    return encodeRun({ config: tl.config, actions: tl.actions.slice(0, tl.applied), cursor: tl.position(), scenario: this.scenarioTag, mockBug: MOCK_BUG });
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
  loadFromHash() {
    let run;
    try { run = decodeRun(location.hash); } catch (err) { toast(`Could not read the link: ${err.message}`, { error: true, ms: 6000 }); return false; }
    if (!run) return false;
    if (run.scenario && this.guideAvailable(run.scenario.id)) {
      this.guide.start(run.scenario.id, { step: run.scenario.step, cursor: run.cursor });
      const tl = this.timeline;
      // the link's actions are a prefix of the tour's plan up to that step: keep the plan (and its future)
      const key = (a) => JSON.stringify([a.t, a.s, a.op, a.args]);
      const canon = (c) => JSON.stringify(Object.keys(c).filter((k) => k !== "mockBug").sort().map((k) => [k, c[k]]));
      const same = run.actions.length <= tl.actions.length && run.actions.every((a, i) => key(a) === key(tl.actions[i]))
        && canon(tl.config) === canon(run.config);
      if (!same) { this.newRun(run.config, run.actions, run.cursor, { keepGuide: true }); this.scenarioTag = run.scenario; }
      return true;
    }
    this.newRun(run.config, run.actions, run.cursor);
    return true;
  }
  guideAvailable(id) { return !!scenarioById(id); }

  // ---------- selection ----------
  select(sel) {
    this.selected = sel;
    this.dirty = true;
    this.inspector.update(true);
    if (document.body.classList.contains("narrow")) document.body.classList.toggle("side-open", !!sel);
  }
  selectNode(id) { if (this.state && id >= 1 && id <= this.state.nodes.length) this.select({ type: "node", id }); }

  // ---------- notices ----------
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

  // ---------- data ----------
  refreshData(force = false) {
    const tl = this.timeline;
    const now = performance.now();
    const tail = this.cluster.logTail();
    if (tl.version !== this.stateVersion || force || tail !== this.stateTail) {
      this.state = tl.sim.state({ logTail: tail });
      this.stateVersion = tl.version;
      this.stateTail = tail;
      this.dirty = true;
    }
    // history(), clients() and check() grow with the run: call them less often when they get expensive
    if ((force || now - this.slowAt > Math.max(SLOW_DATA_MS, this.slowCost * 12)) && (tl.version !== this.slowVersion || force)) {
      this.fetchHistory();
      this.historyAsOf = tl.sim.now();
      this.clientsCache = tl.sim.clients();
      this.slowAt = performance.now();
      this.slowCost = this.slowAt - now;
      this.slowVersion = tl.version;
    }
    if ((force || now - this.checkAt > Math.max(CHECK_EVERY_MS, this.checkCost * CHECK_SHARE)) && tl.version !== this.checkVersion) {
      const t = performance.now();
      this.checkVersion = tl.version;
      try { this.onCheck(tl.sim.check()); } catch (err) { console.error("check() failed", err); }
      this.checkAt = performance.now();
      this.checkCost = this.checkAt - t;
    }
  }

  /**
   * Bring historyCache up to date. Operations are numbered in invocation
   * order and an operation that has settled (ok, unknown, failed) never
   * changes again, so only the tail from the oldest pending one is read.
   */
  fetchHistory() {
    const sim = this.timeline.sim;
    if (this.historySim !== sim) { this.historySim = sim; this.historyCache = []; this.historyFrom = 1; }
    const cache = this.historyCache;
    const fresh = sim.history({ from: this.historyFrom });
    if (fresh.length && fresh[0].id !== this.historyFrom) { this.historySim = null; this.fetchHistory(); return; }
    cache.length = this.historyFrom - 1;
    for (const op of fresh) cache.push(op);
    let i = this.historyFrom - 1;
    while (i < cache.length && cache[i].status !== "pending") i++;
    this.historyFrom = i + 1;
  }

  onCheck(res) {
    const was = this.checkResult;
    this.checkResult = res;
    this.checkCard.update(res);
    if (!res.ok) {
      const lin = res.linearizability;
      this.highlightOps = new Set(lin && !lin.ok ? lin.ops : []);
      if (!was || was.ok) {
        if ($("#pause-on-violation").checked) { this.pause(); this.stopAt = null; }
        this.violationAt = this.timeline.display;
        const ops = this.historyCache.filter((o) => this.highlightOps.has(o.id));
        if (ops.length) {
          const a = Math.min(...ops.map((o) => o.invokedAt)), b = Math.max(...ops.map((o) => o.completedAt ?? this.timeline.display));
          this.historyView.span = Math.max(200, (b - a) * 1.6);
          this.historyView.center = (a + b) / 2;
          $$(".zoom button").forEach((x) => x.classList.remove("on"));
        }
        this.showNotice("violation", `<b>Correctness violation</b> detected at ${fmtTime(this.violationAt)}: ${esc(res.violations[0] ?? "see the Correctness card")}`, [
          { label: "Show in history", fn: () => { if (ops.length) this.historyView.center = (Math.min(...ops.map((o) => o.invokedAt)) + Math.max(...ops.map((o) => o.completedAt ?? 0))) / 2; this.dirty = true; } },
          { label: "Dismiss", fn: () => { this.hideNotice("violation"); this.historyView.center = null; } },
        ], true);
      }
    } else {
      this.highlightOps = new Set();
      if (was && !was.ok) this.hideNotice("violation");
    }
  }

  // ---------- the frame ----------
  frame(ts) {
    requestAnimationFrame((t) => this.frame(t));
    try {
      this.frameBody(ts);
    } catch (err) {
      // keep the loop alive; report each distinct problem once
      const key = String(err?.message ?? err);
      this.reported ??= new Set();
      if (!this.reported.has(key)) { this.reported.add(key); console.error("frame failed:", err); toast(`Drawing failed: ${key}`, { error: true, ms: 6000 }); }
      this.pause();
    }
  }

  frameBody(ts) {
    const dtReal = this.lastTs ? Math.min(100, ts - this.lastTs) : 16;
    if (this.lastTs) { this.frames[this.frameIdx] = ts - this.lastTs; this.frameIdx = (this.frameIdx + 1) % this.frames.length; this.frameCount++; }
    this.lastTs = ts;
    const tl = this.timeline;
    const t0 = performance.now();
    if (this.pendingSeek !== null) { const t = this.pendingSeek; this.pendingSeek = null; this.seek(t); }
    if (this.playing) {
      const from = tl.display;
      const target = from + dtReal * this.speed;
      if (this.stopAt && target >= this.stopAt.display) this.finishPlayTo();
      else {
        // simulate in a few slices and stop when this frame's budget is spent: when the machine
        // cannot keep up, virtual time runs slower than asked instead of frames being dropped
        const slice = Math.max(1, (target - from) / 4);
        while (tl.display < target) {
          tl.advanceTo(Math.min(target, tl.display + slice));
          if (performance.now() - t0 > SIM_BUDGET_MS) break;
        }
      }
      const rate = dtReal > 0 ? (tl.display - from) / dtReal : this.speed;
      this.actualSpeed = this.actualSpeed === undefined ? rate : this.actualSpeed * 0.95 + rate * 0.05;
    } else this.actualSpeed = undefined;
    const t1 = performance.now();
    this.simMs = this.simMs * 0.9 + (t1 - t0) * 0.1;
    this.refreshData();
    const t2 = performance.now();
    this.dataMs = (this.dataMs ?? 0) * 0.9 + (t2 - t1) * 0.1;
    const moving = this.playing || this.state?.inFlight.length || this.dirty;
    if (moving || this.dirty) {
      this.cluster.draw({
        state: this.state, display: tl.display, config: tl.config, clients: this.clientsCache,
        ui: { selected: this.selected, hover: this.hover, partitionPreview: this.networkCard.preview(), drag: this.drag?.moved ? this.drag : null },
      });
      this.historyView.draw({ history: this.historyCache, display: tl.display, asOf: Math.min(tl.display, this.historyAsOf ?? tl.display), highlight: this.highlightOps });
    }
    this.drawMs = this.drawMs * 0.9 + (performance.now() - t2) * 0.1;
    this.dirty = false;
    const tk = tl.display + tl.end * 1e-9 + tl.horizon * 1e-12;
    if ((tk !== this.transportAt || this.scrubbing) && this.previewSeek == null) { this.transportAt = tk; this.updateTransport(); }
    if (ts - this.panelAt > PANEL_MS) { this.panelAt = ts; this.updatePanels(); }
  }

  fps() {
    const n = Math.min(this.frameCount, this.frames.length);
    if (!n) return 0;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.frames[i];
    return 1000 / (sum / n);
  }
  frameStats() {
    const n = Math.min(this.frameCount, this.frames.length);
    const arr = [...this.frames.slice(0, n)].sort((a, b) => a - b);
    return { fps: this.fps(), p50: arr[Math.floor(n * 0.5)] ?? 0, p95: arr[Math.floor(n * 0.95)] ?? 0, max: arr[n - 1] ?? 0, simMs: this.simMs, dataMs: this.dataMs ?? 0, drawMs: this.drawMs, checkMs: this.checkCost, actualSpeed: this.actualSpeed ?? null, inFlight: this.state?.inFlight.length ?? 0 };
  }

  updateTransport() {
    const tl = this.timeline;
    setText($("#clock"), fmtTime(tl.display));
    const end = tl.end;
    const sl = $("#timeline");
    if (!this.scrubbing) {
      const max = Math.max(1, Math.ceil(end));
      if (Number(sl.max) !== max) sl.max = String(max);
      if (Math.abs(Number(sl.value) - tl.display) >= 1) sl.value = String(Math.floor(tl.display));
    }
    const pct = (t) => `${Math.min(100, (t / Math.max(1, end)) * 100)}%`;
    $("#scrub-fill").style.width = pct(tl.display);
    const fut = $("#scrub-future");
    fut.style.left = pct(tl.display);
    fut.style.width = `${Math.max(0, ((tl.horizon - tl.display) / Math.max(1, end)) * 100)}%`;
    setText($("#end-time"), fmtShort(end));
  }

  updatePanels() {
    const tl = this.timeline;
    const end = tl.end;
    const pct = (t) => `${Math.min(100, (t / Math.max(1, end)) * 100)}%`;
    const marksKey = `${tl.revision}:${tl.applied}:${Math.round(end / 50)}`;
    const marks = $("#scrub-marks");
    if (marks.__key !== marksKey) {
      marks.__key = marksKey;
      marks.innerHTML = tl.actions.slice(0, 400).map((a, i) => `<i class="${i >= tl.applied ? "future" : ""}" style="left:${pct(a.at)}" title="${esc(a.op)} at ${fmtTime(a.at)}"></i>`).join("");
    }
    // the "viewing the past" notice
    if (tl.hasFuture && !this.stopAt && this.noticeKind !== "violation") {
      this.showNotice("past", `Viewing <b>${fmtTime(tl.display)}</b> of a run recorded up to <b>${fmtTime(end)}</b>${tl.applied < tl.actions.length ? ` (${tl.actions.length - tl.applied} later action${tl.actions.length - tl.applied === 1 ? "" : "s"})` : ""}. Play replays it; <b>any action here discards everything after this moment</b>, like typing after an undo.`,
        [{ label: "Jump to the end", fn: () => this.seek(this.timeline.end) }]);
    } else if (this.noticeKind === "past" && (!tl.hasFuture || this.stopAt)) this.hideNotice("past");
    // the speed asked for, and the speed reached when the machine cannot keep up
    const lag = this.playing && !this.stopAt && this.actualSpeed !== undefined && this.actualSpeed < this.speed * 0.85;
    const out = $("#speed-out");
    setText(out, lag ? `${this.speedLabel()} → ${this.speedLabel(this.actualSpeed)}` : this.speedLabel());
    out.title = lag ? "This machine simulates slower than the speed asked for, so virtual time runs at the second figure; frames keep coming." : "";
    this.inspector.update();
    this.clientsCard.update();
    this.networkCard.update();
    this.eventLog.update();
    this.guide.tick();
    if (this.showFps) {
      const s = this.frameStats();
      setText($("#fps"), `${s.fps.toFixed(1)} fps  p95 ${s.p95.toFixed(1)} ms\nsim ${s.simMs.toFixed(2)} ms  data ${s.dataMs.toFixed(2)} ms  draw ${s.drawMs.toFixed(2)} ms\nlast check() ${s.checkMs.toFixed(1)} ms\n${s.inFlight} msgs  ${this.historyCache.length} ops  ${this.backend.name}`);
    }
  }

  // ---------- input ----------
  wire() {
    $("#play").addEventListener("click", () => this.togglePlay());
    $("#step").addEventListener("click", () => this.step());
    $("#speed").addEventListener("input", () => this.setSpeedExp(Number($("#speed").value)));
    setText($("#speed-out"), this.speedLabel());
    const sl = $("#timeline");
    sl.addEventListener("pointerdown", () => { this.scrubbing = true; this.wasPlaying = this.playing; this.pause(); });
    sl.addEventListener("input", () => {
      const t = Number(sl.value);
      // long runs: while dragging only preview the time, and replay once on release
      if (this.scrubbing && this.seekCost(t) > 120) { setText($("#clock"), `→ ${fmtTime(t)}`); this.previewSeek = t; return; }
      this.pendingSeek = t;
    });
    const endScrub = () => { if (this.previewSeek != null) { this.pendingSeek = this.previewSeek; this.previewSeek = null; } if (this.scrubbing) { this.scrubbing = false; if (this.wasPlaying) this.play(); } };
    sl.addEventListener("pointerup", endScrub);
    sl.addEventListener("change", () => { this.pendingSeek = Number(sl.value); this.previewSeek = null; endScrub(); });
    $("#run-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const nodes = Number($("#nodes").value), seed = Math.max(0, Math.floor(Number($("#seed").value) || 0));
      this.newRun({ ...this.baseConfig(), nodes, seed });
      toast(`New run: ${nodes} nodes, seed ${seed}`);
    });
    $("#nodes").addEventListener("change", () => $("#run-form").requestSubmit());
    $("#settings-btn").addEventListener("click", () => this.openSettings());
    $("#settings-form").addEventListener("submit", (e) => {
      const v = e.submitter?.value;
      if (v !== "apply") return;
      const n = (id) => Number($(id).value);
      const cfg = {
        ...this.baseConfig(),
        electionTimeoutMs: [n("#s-et-min"), Math.max(n("#s-et-min"), n("#s-et-max"))], heartbeatMs: n("#s-hb"),
        latencyMs: [n("#s-lat-min"), Math.max(n("#s-lat-min"), n("#s-lat-max"))], dropRate: n("#s-drop"), duplicateRate: n("#s-dup"),
        snapshotEvery: n("#s-snap"), preVote: $("#s-prevote").checked, checkQuorum: $("#s-checkquorum").checked,
      };
      try { this.newRun(cfg); toast("New run with these settings."); } catch (err) { toast(err.message, { error: true }); this.newRun(DEFAULT_CONFIG); }
    });
    $("#guide-btn").addEventListener("click", () => this.guide.toggleList());
    $("#share-btn").addEventListener("click", () => this.copyLink());
    $("#help-btn").addEventListener("click", () => this.openHelp());
    $("#intro-btn").addEventListener("click", () => $("#intro").showModal());
    $("#intro").addEventListener("close", () => {
      localStorage.setItem("distribkv.introSeen", "1");
      if ($("#intro").returnValue === "tour") this.guide.start("first-election");
    });
    $("#panel-btn").addEventListener("click", () => document.body.classList.toggle("side-open"));
    $$(".zoom button").forEach((b) => b.addEventListener("click", () => {
      $$(".zoom button").forEach((x) => x.classList.toggle("on", x === b));
      this.historyView.span = Number(b.dataset.span);
      this.historyView.center = null;
      this.dirty = true;
    }));

    const canvas = $("#cluster");
    const pos = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    // drag a node onto another to put it in that node's partition group, or into empty space for a group of its own
    canvas.addEventListener("pointerdown", (e) => {
      const [x, y] = pos(e);
      const h = this.cluster.hit(x, y);
      if (h?.type === "node" && e.button === 0) { this.drag = { id: h.id, x0: x, y0: y, x, y, moved: false, target: null }; canvas.setPointerCapture(e.pointerId); }
    });
    canvas.addEventListener("pointerup", () => {
      const d = this.drag;
      this.drag = null;
      if (!d || !d.moved) return;
      this.suppressClick = true;
      this.dirty = true;
      const p = this.cluster.nodePos(d.id);
      if (!d.target && p && Math.hypot(d.x - p.x, d.y - p.y) < 40) return;
      const groups = this.networkCard.groupsFromState();
      const used = new Set([...groups].filter(([id]) => id !== d.id).map(([, g]) => g));
      let g = d.target ? groups.get(d.target) : 0;
      if (!d.target) while (used.has(g)) g++;
      groups.set(d.id, g);
      const lists = new Map();
      for (const [id, gi] of [...groups].sort((a, b) => a[0] - b[0])) { if (!lists.has(gi)) lists.set(gi, []); lists.get(gi).push(id); }
      const parts = [...lists.values()];
      this.networkCard.draft = null;
      this.act("partition", parts);
      if (this.lastActOk) toast(parts.length > 1 ? `Partition: ${parts.map((x) => x.join(",")).join(" | ")}` : "All nodes in one group again (cut links stay cut).");
    });
    canvas.addEventListener("pointermove", (e) => {
      const [x, y] = pos(e);
      if (this.drag) {
        const d = this.drag;
        d.x = x; d.y = y;
        if (Math.hypot(x - d.x0, y - d.y0) > 6) d.moved = true;
        const h = this.cluster.hit(x, y);
        d.target = h?.type === "node" && h.id !== d.id ? h.id : null;
        this.dirty = true;
        canvas.style.cursor = "grabbing";
        this.tooltip(d.moved ? { type: "drag", d } : null, e.clientX, e.clientY);
        return;
      }
      const h = this.cluster.hit(x, y);
      const k = (o) => (o ? `${o.type}:${o.id ?? o.key ?? ""}:${o.a ?? ""}:${o.b ?? ""}:${o.index ?? ""}` : "");
      if (k(h) !== k(this.hover)) { this.hover = h; this.dirty = true; }
      canvas.style.cursor = h ? "pointer" : "default";
      this.tooltip(h, e.clientX, e.clientY);
    });
    canvas.addEventListener("pointerleave", () => { this.hover = null; this.dirty = true; this.tooltip(null); });
    canvas.addEventListener("click", (e) => {
      if (this.suppressClick) { this.suppressClick = false; return; }
      const [x, y] = pos(e);
      const h = this.cluster.hit(x, y);
      if (!h) return this.select(null);
      if (h.type === "row") return this.select({ type: "node", id: h.id });
      this.select(h);
    });
    const hc = $("#history");
    hc.addEventListener("pointermove", (e) => {
      const r = hc.getBoundingClientRect();
      const op = this.historyView.hit(e.clientX - r.left, e.clientY - r.top);
      this.tooltip(op ? { type: "op", op } : null, e.clientX, e.clientY);
    });
    hc.addEventListener("pointerleave", () => this.tooltip(null));
    hc.addEventListener("wheel", (e) => {
      if (!this.historyView.span) return;
      e.preventDefault();
      this.historyView.span = Math.max(100, Math.min(600000, this.historyView.span * (e.deltaY > 0 ? 1.2 : 1 / 1.2)));
      $$(".zoom button").forEach((x) => x.classList.remove("on"));
      this.dirty = true;
    }, { passive: false });

    new ResizeObserver(() => { this.layoutChanged(); }).observe($("#stage"));
    new ResizeObserver(() => { this.dirty = true; }).observe($("#history"));
    const mq = matchMedia("(prefers-color-scheme: dark)");
    mq.addEventListener("change", () => { this.theme.read(); this.dirty = true; this.buildLegend(); });
    this.narrowMq = matchMedia("(max-width: 1020px)");
    this.mediumMq = matchMedia("(max-width: 1500px)");
    this.narrowMq.addEventListener("change", () => this.updateDrawer());
    this.mediumMq.addEventListener("change", () => this.updateDrawer());
    this.updateDrawer();
    window.addEventListener("hashchange", () => { if (location.hash !== this.ownHash) this.loadFromHash(); });
    window.addEventListener("keydown", (e) => this.onKey(e));
    this.buildLegend();
  }

  buildLegend() {
    const T = this.theme;
    const roles = ["leader", "follower", "candidate", "precandidate", "down"].map((r) => `<span><i style="background:${T.role[r]}"></i>${ROLE_LABEL[r]}</span>`);
    const kinds = [["AppendEntries", "append"], ["Heartbeat", "heartbeat"], ["RequestVote", "vote"], ["PreVote", "pre-vote"], ["InstallSnapshot", "snapshot"], ["TimeoutNow", "timeout now"], ["ClientRequest", "client"]]
      .map(([k, label]) => `<span><i style="background:${T.msg[k]}"></i>${label}</span>`);
    $("#legend").innerHTML = roles.join("") + `<span style="margin-left:8px">messages:</span>` + kinds.join("") + `<span><i class="ring" style="border-color:${T.muted}"></i>reply</span>`;
  }

  tooltip(h, x, y) {
    const tip = $("#tooltip");
    if (!h) { tip.hidden = true; return; }
    let text = "";
    const st = this.state;
    if (h.type === "node" || h.type === "row") {
      const nd = st?.nodes.find((n) => n.id === h.id);
      if (!nd) { tip.hidden = true; return; }
      text = `Node ${nd.id} · ${nd.up ? ROLE_LABEL[nd.role] ?? nd.role : "down"} · term ${nd.term}\ncommit ${nd.commitIndex} · applied ${nd.appliedIndex} · last ${nd.lastIndex ?? "?"}\n${Object.keys(nd.kv || {}).length} keys in its store\ndrag onto another node or into empty space to partition`;
      if (h.type === "row" && h.index) {
        const e = nd.log.find((x) => x.index === h.index);
        text = e ? `Node ${nd.id}, index ${e.index}, term ${e.term}\n${commandLabel(e, this.clientsCache)}\n${e.index <= nd.commitIndex ? "committed" : "not committed yet"}` : h.index <= (nd.snapshotIndex ?? 0) ? `Node ${nd.id}, index ${h.index}: compacted into the snapshot` : `Node ${nd.id} has no entry ${h.index}`;
      } else text = text.replace("\ndrag", "\nclick to inspect · drag");
    } else if (h.type === "msg") {
      const m = st?.inFlight.find((x) => x.id === h.id);
      if (!m) { tip.hidden = true; return; }
      text = `${m.kind} ${m.from} → ${m.to}\n${sessionText(m.summary ?? "", this.clientsCache)}\nsent ${fmtTime(m.sentAt)}, arrives ${fmtTime(m.deliverAt)}\nclick to inspect or drop`;
    } else if (h.type === "link") {
      const cut = new Set((st?.links?.cut || []).map(([a, b]) => `${a}>${b}`));
      text = `Link ${h.a} ↔ ${h.b}\n${h.a} → ${h.b}: ${cut.has(`${h.a}>${h.b}`) ? "cut" : "open"} · ${h.b} → ${h.a}: ${cut.has(`${h.b}>${h.a}`) ? "cut" : "open"}\nclick to cut or restore`;
    } else if (h.type === "client") {
      const c = this.clientsCache.find((c) => `c${c.id}` === h.key);
      text = `Client ${h.key}${c ? `\n${c.busy ? "waiting for an answer" : "idle"} · thinks the leader is ${c.leaderGuess ?? "unknown"}` : ""}`;
    } else if (h.type === "drag") {
      text = h.d.target ? `Drop: put node ${h.d.id} in node ${h.d.target}'s partition group` : `Drop in empty space: node ${h.d.id} gets a partition group of its own`;
    } else if (h.type === "op") {
      const o = h.op;
      text = `op ${o.id} · client c${o.client}\n${opLabel(o)}\ninvoked ${fmtTime(o.invokedAt)}${o.completedAt != null ? `\ncompleted ${fmtTime(o.completedAt)} (${Math.round(o.completedAt - o.invokedAt)} ms)` : "\nstill pending"}\nstatus ${o.status}${o.attempts != null ? ` · ${o.attempts} attempt${o.attempts === 1 ? "" : "s"}` : ""}${o.error ? `\n${o.error}` : ""}${this.highlightOps.has(o.id) ? "\ninvolved in the violation" : ""}`;
    }
    tip.textContent = text;
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    let left = x + 14, top = y + 14;
    if (left + r.width > innerWidth - 8) left = x - r.width - 14;
    if (top + r.height > innerHeight - 8) top = y - r.height - 14;
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${Math.max(4, top)}px`;
  }

  openSettings() {
    const c = this.timeline.config;
    $("#s-et-min").value = c.electionTimeoutMs[0]; $("#s-et-max").value = c.electionTimeoutMs[1];
    $("#s-hb").value = c.heartbeatMs; $("#s-snap").value = c.snapshotEvery;
    $("#s-lat-min").value = c.latencyMs[0]; $("#s-lat-max").value = c.latencyMs[1];
    $("#s-drop").value = c.dropRate; $("#s-dup").value = c.duplicateRate;
    $("#s-prevote").checked = !!c.preVote; $("#s-checkquorum").checked = !!c.checkQuorum;
    $("#settings").showModal();
  }

  openHelp() {
    $("#help-keys").innerHTML = KEYS.map(([k, d]) => `<tr><td>${k.split(" ").map((x) => `<kbd>${esc(x)}</kbd>`).join(" ")}</td><td>${esc(d)}</td></tr>`).join("");
    $("#help").showModal();
  }

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const tag = t?.tagName;
    const typing = tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && !["checkbox", "range", "radio", "button", "submit"].includes(t.type));
    // on a slider the arrow keys belong to it; on buttons and checkboxes space still plays / pauses
    if (tag === "INPUT" && t.type === "range" && e.key.startsWith("Arrow")) return;
    if (e.key === "Escape") {
      if (typing) e.target.blur();
      this.select(null);
      this.tooltip(null);
      document.body.classList.remove("side-open");
      return;
    }
    if (typing || document.querySelector("dialog[open]")) return;
    const sel = this.selected?.type === "node" ? this.selected.id : null;
    const needNode = () => { if (sel === null) toast("Select a node first (click it, or press 1–9)."); return sel !== null; };
    const k = e.key;
    let handled = true;
    if (k === " ") this.togglePlay();
    else if (k === "n" || k === "ArrowRight") this.step();
    else if (k === "ArrowLeft") this.seek(Math.max(0, this.timeline.display - (e.shiftKey ? 100 : 10)));
    else if (k === "Home") this.seek(0);
    else if (k === "End") this.seek(this.timeline.end);
    else if (/^[1-9]$/.test(k)) this.selectNode(Number(k));
    else if (k === "c") { if (needNode()) this.act("crash", sel); }
    else if (k === "r") { if (needNode()) this.act("restart", sel); }
    else if (k === "e") { if (needNode()) this.act("triggerElection", sel); }
    else if (k === "t") { if (needNode()) this.act("transferLeadership", sel); }
    else if (k === "s") { if (needNode()) this.act("snapshot", sel); }
    else if (k === "p") { document.body.classList.add("side-open"); this.clientsCard.focus(); }
    else if (k === "w") this.clientsCard.toggleWorkload();
    else if (k === "h") this.act("heal");
    else if (k === "d") { const sm = this.selected; if (sm?.type === "msg") this.act("dropMessage", sm.id); else toast("Select a message first (click a moving dot)."); }
    else if (k === "[") this.setSpeedExp(Math.log10(this.speed) - 0.25);
    else if (k === "]") this.setSpeedExp(Math.log10(this.speed) + 0.25);
    else if (k === "g") this.guide.toggleList();
    else if (k === "l") this.copyLink();
    else if (k === "f") { this.showFps = !this.showFps; $("#fps").hidden = !this.showFps; }
    else if (k === "?") this.openHelp();
    else handled = false;
    if (handled) e.preventDefault();
  }

  start() {
    this.wire();
    if (!this.loadFromHash()) this.newRun({ ...DEFAULT_CONFIG });
    $("#boot").hidden = true;
    requestAnimationFrame((t) => this.frame(t));
    if (!location.hash && !localStorage.getItem("distribkv.introSeen")) $("#intro").showModal();
  }
}

const KEYS = [
  ["space", "play / pause"],
  ["n →", "step: process the next event"],
  ["←", "back 10 ms of virtual time (shift: 100 ms)"],
  ["Home End", "jump to the start / to the end of the recorded run"],
  ["[ ]", "slower / faster"],
  ["1 … 9", "select a node"],
  ["c", "crash the selected node"],
  ["r", "restart the selected node"],
  ["e", "fire the selected node's election timer"],
  ["t", "transfer leadership to the selected node"],
  ["s", "snapshot the selected node"],
  ["d", "drop the selected message"],
  ["h", "heal the network (partitions and cut links)"],
  ["p", "write a request (focus the client form)"],
  ["w", "steady client workload on / off"],
  ["g", "guided tours"],
  ["l", "copy a link to this moment"],
  ["f", "frame-rate corner"],
  ["?", "this help"],
  ["Esc", "deselect, close"],
];

function showBuildMessage(err) {
  const boot = $("#boot");
  if (USE_MOCK) {
    boot.innerHTML = `<div class="box">
    <h2>The JavaScript stand-in is not here</h2>
    <p><code>?mock</code> runs <code>web/dev/mock-sim.js</code>, a development tool that is not part of every copy of the page${err?.message ? ` (${esc(err.message)})` : ""}.</p>
    <p><a href="./">Open the page without <code>?mock</code></a> to run the real simulator.</p>
  </div>`;
  } else boot.innerHTML = `<div class="box">
    <h2>The simulator is not built yet</h2>
    <p>This page runs the Rust simulator compiled to WebAssembly, and <code>web/pkg/distribkv_wasm.js</code> could not be loaded${err?.message ? ` (${esc(err.message)})` : ""}.</p>
    <p>From the repository root, this builds it into <code>web/pkg/</code> and serves the page:</p>
    <pre>scripts/serve-web.sh</pre>
    <p>(<code>scripts/build-web.sh</code> only builds; <code>web/</code> then works from any static file server.)</p>
    <p class="muted small">To look around the page without the build, open it with <a href="?mock">?mock</a>: a small stand-in written in JavaScript that imitates the simulator. It is not the real Raft implementation.</p>
  </div>`;
  $("#play").disabled = $("#step").disabled = true;
  document.body.classList.add("no-sim");
  window.__distribkv = { ready: false, error: String(err?.message ?? err) };
}

async function boot() {
  let backend;
  try {
    backend = await loadBackend({ mock: USE_MOCK });
  } catch (err) {
    console.warn("simulation backend not available:", err);
    showBuildMessage(err);
    return;
  }
  if (backend.name === "mock") {
    const b = $("#backend-badge");
    b.hidden = false;
    b.textContent = MOCK_BUG ? `mock · ${MOCK_BUG}` : "mock simulator";
    b.title = "Running the JavaScript stand-in (web/dev/mock-sim.js), not the Rust simulator";
  }
  const app = new App(backend);
  window.__distribkv = {
    ready: true,
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
