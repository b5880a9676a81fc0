// Playback: how virtual time moves. Play and pause, the speed, one event
// at a time, seeking and scrubbing the recorded run, and playing a guided
// step up to its end. Each frame it advances the run within a budget, so a
// machine that cannot keep up runs virtual time slower instead of dropping
// frames; it also keeps the frame timings the frame-rate corner shows.

import { $, setText, fmtTime, toast } from "./dom.js";
import { LINK_MAX_MS } from "./share.js";

const SIM_BUDGET_MS = 9; // real ms of simulation per frame, at most (the rest is drawing)
const SCRUB_PREVIEW_MS = 120; // a seek expected to take longer only previews the time while dragging

export class Playback {
  constructor(app) {
    this.app = app;
    this.playing = false;
    this.speed = 10 ** Number($("#speed").value);
    /** A position to stop at (a guided step's end) while playing, or null. */
    this.stopAt = null;
    /** A seek asked for by the scrubber, done at the next frame. */
    this.pendingSeek = null;
    /** While dragging over a long run: the time shown, replayed on release. */
    this.previewSeek = null;
    this.scrubbing = false;
    this.wasPlaying = false;
    /** Real ms per virtual ms of replaying the run, measured on long seeks. */
    this.replayRate = 0.002;
    /** Virtual ms per real ms reached lately (undefined while paused). */
    this.actualSpeed = undefined;
    this.frames = new Float64Array(120);
    this.frameIdx = 0;
    this.frameCount = 0;
    this.lastTs = 0;
    this.simMs = 0;
  }

  get timeline() { return this.app.timeline; }

  // ---------- play, pause, speed ----------
  play() {
    if (this.playing) return;
    this.playing = true;
    this.updatePlayButton();
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.updatePlayButton();
    this.app.scheduleHash();
  }

  togglePlay() { if (this.playing) { this.pause(); this.stopAt = null; } else this.play(); }

  updatePlayButton() {
    const b = $("#play");
    b.textContent = this.playing ? "❚❚" : "▶";
    b.setAttribute("aria-label", this.playing ? "Pause" : "Play");
  }

  /** Set the speed to 10^x times real time (x from -2 to 2). */
  setSpeedExp(x) {
    x = Math.max(-2, Math.min(2, x));
    $("#speed").value = String(x);
    this.speed = 10 ** x;
    setText($("#speed-out"), this.speedLabel());
  }

  speedLabel(s = this.speed) {
    return `${s < 0.1 ? s.toFixed(2) : s < 1 ? s.toFixed(1) : s < 10 ? s.toFixed(1) : Math.round(s)}×`;
  }

  // ---------- guided steps ----------
  /** Play the run up to a position (a guided step's end) at a speed that takes a few seconds, then stop exactly there. */
  playTo(end) {
    const d = end.display - this.timeline.display;
    if (d <= 0) { this.timeline.seekPosition(end); this.app.dirty = true; return; }
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
    this.app.dirty = true;
  }

  // ---------- events and seeking ----------
  /** Process the next event (or recorded action) and say what it was. */
  step() {
    this.pause();
    this.stopAt = null;
    if (this.timeline.display >= LINK_MAX_MS) { this.sayRunEnds(); return; }
    const ev = this.timeline.stepOnce();
    this.app.dirty = true;
    if (!ev) toast("Nothing is scheduled.");
    else toast(`${fmtTime(ev.at)} · ${ev.node ?? ""} ${ev.text || ev.kind}`, { ms: 1800 });
    this.app.scheduleHash();
  }

  /** Roughly how long (real ms) showing virtual time t would take: the run replays from the latest checkpoint before t (going back), or from where it is. */
  seekCost(t) {
    return Math.max(0, t - this.timeline.replayStart(t)) * this.replayRate;
  }

  seek(t) {
    this.stopAt = null;
    const t0 = performance.now();
    this.timeline.seek(t);
    const spent = performance.now() - t0;
    const replayed = this.timeline.lastSeek.replayedMs;
    if (replayed > 200) this.replayRate = spent / replayed;
    this.app.dirty = true;
    this.app.scheduleHash();
  }

  // ---------- the scrubber ----------
  beginScrub() { this.scrubbing = true; this.wasPlaying = this.playing; this.pause(); }

  /** The scrubber moved to t: seek at the next frame, or on long runs only preview the time until release. */
  scrubTo(t) {
    if (this.scrubbing && this.seekCost(t) > SCRUB_PREVIEW_MS) { setText($("#clock"), `→ ${fmtTime(t)}`); this.previewSeek = t; return; }
    this.pendingSeek = t;
  }

  endScrub() {
    if (this.previewSeek != null) { this.pendingSeek = this.previewSeek; this.previewSeek = null; }
    if (this.scrubbing) { this.scrubbing = false; if (this.wasPlaying) this.play(); }
  }

  // ---------- each frame ----------
  /** Count the frame, do a pending seek, and advance the run by this frame's share of virtual time. */
  tick(ts) {
    const dtReal = this.lastTs ? Math.min(100, ts - this.lastTs) : 16;
    if (this.lastTs) { this.frames[this.frameIdx] = ts - this.lastTs; this.frameIdx = (this.frameIdx + 1) % this.frames.length; this.frameCount++; }
    this.lastTs = ts;
    const t0 = performance.now();
    if (this.pendingSeek !== null) { const t = this.pendingSeek; this.pendingSeek = null; this.seek(t); }
    if (this.playing) this.advance(dtReal, t0);
    else this.actualSpeed = undefined;
    this.simMs = this.simMs * 0.9 + (performance.now() - t0) * 0.1;
  }

  /** A run ends where a share link stops replaying (share.js): playing or stepping further would write links the page refuses. */
  sayRunEnds() {
    this.pause();
    toast(`The run ends at ${LINK_MAX_MS / 3_600_000} h of virtual time: a share link replays no further.`, { ms: 6000 });
  }

  advance(dtReal, t0) {
    const tl = this.timeline;
    const from = tl.display;
    const target = Math.min(from + dtReal * this.speed, LINK_MAX_MS);
    if (this.stopAt && target >= this.stopAt.display) this.finishPlayTo();
    else if (from >= LINK_MAX_MS) this.sayRunEnds();
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
  }

  /** Has the machine fallen behind the speed asked for? */
  get lagging() {
    return this.playing && !this.stopAt && this.actualSpeed !== undefined && this.actualSpeed < this.speed * 0.85;
  }

  fps() {
    const n = Math.min(this.frameCount, this.frames.length);
    if (!n) return 0;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.frames[i];
    return 1000 / (sum / n);
  }

  /** Frame rate and frame-time percentiles over the last 120 frames, and the simulation's share. */
  frameStats() {
    const n = Math.min(this.frameCount, this.frames.length);
    const sorted = [...this.frames.slice(0, n)].sort((a, b) => a - b);
    return { fps: this.fps(), p50: sorted[Math.floor(n * 0.5)] ?? 0, p95: sorted[Math.floor(n * 0.95)] ?? 0, max: sorted[n - 1] ?? 0, simMs: this.simMs, actualSpeed: this.actualSpeed ?? null };
  }
}
