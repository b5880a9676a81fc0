// Refresh: what the page reads from the simulation and shows, each frame.
// state() whenever the run changed; history() and clients() read
// incrementally; check() at most a few percent of the time (its cost grows
// with the history), and a violation pauses the run and outlines the
// operations involved. Then the canvases are drawn, the transport bar
// follows the run and, a few times a second, the side panels.

import { $, $$, setText, esc, fmtTime, fmtShort } from "./dom.js";
import { HistoryCache } from "./history-view.js";

const CHECK_EVERY_MS = 400; // real ms between sim.check() calls, at least
const CHECK_SHARE = 25; // ... and at least this many times what the last check() took: it grows with the history
const SLOW_DATA_MS = 0; // real ms between history()/clients() fetches, at least (they are read incrementally, so every frame)
const PANEL_MS = 110; // real ms between side panel refreshes

export class Refresh {
  constructor(app) {
    this.app = app;
    this.slowAt = 0;
    this.slowCost = 0;
    this.checkAt = 0;
    this.checkCost = 0;
    this.panelAt = 0;
    this.dataMs = 0;
    this.drawMs = 0;
    this.historyCache = new HistoryCache();
    this.reset();
  }

  /** A new run: read everything again. */
  reset() {
    this.stateVersion = -1;
    this.slowVersion = -1;
    this.checkVersion = -1;
  }

  /** One frame: read what changed, draw, and follow the run in the transport bar and the panels. */
  frame(ts) {
    const t0 = performance.now();
    this.data();
    const t1 = performance.now();
    this.dataMs = this.dataMs * 0.9 + (t1 - t0) * 0.1;
    const app = this.app;
    if (app.playback.playing || app.state?.inFlight.length || app.dirty) this.draw();
    this.drawMs = this.drawMs * 0.9 + (performance.now() - t1) * 0.1;
    app.dirty = false;
    const tl = app.timeline;
    const at = tl.display + tl.end * 1e-9 + tl.horizon * 1e-12;
    if ((at !== this.transportAt || app.playback.scrubbing) && app.playback.previewSeek == null) { this.transportAt = at; this.transport(); }
    if (ts - this.panelAt > PANEL_MS) { this.panelAt = ts; this.panels(); }
  }

  // ---------- reading the simulation ----------
  /** Read state() if the run changed; history(), clients() and check() less often as they get expensive. */
  data(force = false) {
    const app = this.app;
    const tl = app.timeline;
    const now = performance.now();
    const tail = app.cluster.logTail();
    if (tl.version !== this.stateVersion || force || tail !== this.stateTail) {
      app.state = tl.sim.state({ logTail: tail });
      this.stateVersion = tl.version;
      this.stateTail = tail;
      app.dirty = true;
    }
    if ((force || now - this.slowAt > Math.max(SLOW_DATA_MS, this.slowCost * 12)) && (tl.version !== this.slowVersion || force)) {
      this.fetchHistory();
      this.historyAsOf = tl.sim.now();
      app.clientsCache = tl.sim.clients();
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

  /** Bring the history cache up to date (read incrementally, see HistoryCache). */
  fetchHistory() {
    this.app.historyCache = this.historyCache.sync(this.app.timeline.sim);
  }

  // ---------- a violation ----------
  /** Show a check() result; at the first violation, pause (if asked) and point at the operations involved. */
  onCheck(result) {
    const app = this.app;
    const was = app.checkResult;
    app.checkResult = result;
    app.checkCard.update(result);
    if (result.ok) {
      app.highlightOps = new Set();
      if (was && !was.ok) app.hideNotice("violation");
      return;
    }
    const lin = result.linearizability;
    app.highlightOps = new Set(lin && !lin.ok ? lin.ops : []);
    if (!was || was.ok) this.announceViolation(result);
  }

  announceViolation(result) {
    const app = this.app;
    if ($("#pause-on-violation").checked) { app.playback.pause(); app.playback.stopAt = null; }
    const at = app.timeline.display;
    const ops = app.historyCache.filter((op) => app.highlightOps.has(op.id));
    const history = app.historyView;
    if (ops.length) {
      const from = Math.min(...ops.map((op) => op.invokedAt)), to = Math.max(...ops.map((op) => op.completedAt ?? at));
      history.span = Math.max(200, (to - from) * 1.6);
      history.center = (from + to) / 2;
      $$(".zoom button").forEach((x) => x.classList.remove("on"));
    }
    const showInHistory = () => {
      if (ops.length) history.center = (Math.min(...ops.map((op) => op.invokedAt)) + Math.max(...ops.map((op) => op.completedAt ?? 0))) / 2;
      app.dirty = true;
    };
    app.showNotice("violation", `<b>Correctness violation</b> detected at ${fmtTime(at)}: ${esc(result.violations[0] ?? "see the Correctness card")}`, [
      { label: "Show in history", fn: showInHistory },
      { label: "Dismiss", fn: () => { app.hideNotice("violation"); history.center = null; } },
    ], true);
  }

  // ---------- drawing ----------
  draw() {
    const app = this.app;
    const tl = app.timeline;
    const drag = app.controls.drag;
    app.cluster.draw({
      state: app.state, display: tl.display, config: tl.config, clients: app.clientsCache,
      ui: { selected: app.selected, hover: app.hover, partitionPreview: app.networkCard.preview(), drag: drag?.moved ? drag : null },
    });
    app.historyView.draw({ history: app.historyCache, display: tl.display, asOf: Math.min(tl.display, this.historyAsOf ?? tl.display), highlight: app.highlightOps });
  }

  /** The clock, the scrubber and the recorded run's extent. */
  transport() {
    const app = this.app;
    const tl = app.timeline;
    setText($("#clock"), fmtTime(tl.display));
    const end = tl.end;
    const slider = $("#timeline");
    if (!app.playback.scrubbing) {
      const max = Math.max(1, Math.ceil(end));
      if (Number(slider.max) !== max) slider.max = String(max);
      if (Math.abs(Number(slider.value) - tl.display) >= 1) slider.value = String(Math.floor(tl.display));
    }
    const pct = (t) => `${Math.min(100, (t / Math.max(1, end)) * 100)}%`;
    $("#scrub-fill").style.width = pct(tl.display);
    const future = $("#scrub-future");
    future.style.left = pct(tl.display);
    future.style.width = `${Math.max(0, ((tl.horizon - tl.display) / Math.max(1, end)) * 100)}%`;
    setText($("#end-time"), fmtShort(end));
  }

  // ---------- the panels, a few times a second ----------
  panels() {
    const app = this.app;
    this.actionMarks();
    this.pastNotice();
    this.speedReadout();
    app.inspector.update();
    app.clientsCard.update();
    app.networkCard.update();
    app.eventLog.update();
    app.guide.tick();
    if (app.showFps) this.fpsCorner();
  }

  /** A tick on the scrubber for every recorded action. */
  actionMarks() {
    const tl = this.app.timeline;
    const end = tl.end;
    const pct = (t) => `${Math.min(100, (t / Math.max(1, end)) * 100)}%`;
    const key = `${tl.revision}:${tl.applied}:${Math.round(end / 50)}`;
    const marks = $("#scrub-marks");
    if (marks.__key === key) return;
    marks.__key = key;
    marks.innerHTML = tl.actions.slice(0, 400).map((a, i) => `<i class="${i >= tl.applied ? "future" : ""}" style="left:${pct(a.at)}" title="${esc(a.op)} at ${fmtTime(a.at)}"></i>`).join("");
  }

  /** The "viewing the past" notice. */
  pastNotice() {
    const app = this.app;
    const tl = app.timeline;
    const stopping = !!app.playback.stopAt;
    if (tl.hasFuture && !stopping && app.noticeKind !== "violation") {
      const later = tl.actions.length - tl.applied;
      app.showNotice("past", `Viewing <b>${fmtTime(tl.display)}</b> of a run recorded up to <b>${fmtTime(tl.end)}</b>${later > 0 ? ` (${later} later action${later === 1 ? "" : "s"})` : ""}. Play replays it; <b>any action here discards everything after this moment</b>, like typing after an undo.`,
        [{ label: "Jump to the end", fn: () => app.playback.seek(app.timeline.end) }]);
    } else if (app.noticeKind === "past" && (!tl.hasFuture || stopping)) app.hideNotice("past");
  }

  /** The speed asked for, and the speed reached when the machine cannot keep up. */
  speedReadout() {
    const playback = this.app.playback;
    const lag = playback.lagging;
    const out = $("#speed-out");
    setText(out, lag ? `${playback.speedLabel()} → ${playback.speedLabel(playback.actualSpeed)}` : playback.speedLabel());
    out.title = lag ? "This machine simulates slower than the speed asked for, so virtual time runs at the second figure; frames keep coming." : "";
  }

  fpsCorner() {
    const app = this.app;
    const s = app.frameStats();
    setText($("#fps"), `${s.fps.toFixed(1)} fps  p95 ${s.p95.toFixed(1)} ms\nsim ${s.simMs.toFixed(2)} ms  data ${s.dataMs.toFixed(2)} ms  draw ${s.drawMs.toFixed(2)} ms\nlast check() ${s.checkMs.toFixed(1)} ms\n${s.inFlight} msgs  ${app.historyCache.length} ops  ${app.backend.name}`);
  }
}
