// Controls: every way a person acts on the page. The transport bar, the run
// and settings forms, the dialogs, the cluster canvas (click to select,
// hover for a tooltip, drag a node to partition) and the history canvas,
// the keyboard, and what follows the window's size and colour scheme. Each
// control only forwards to the app: a recorded action, playback, or a
// selection.

import { $, $$, setText, esc, fmtTime, toast, showTooltip } from "./dom.js";
import { DEFAULT_CONFIG } from "./share.js";
import { isShardedHash } from "./sharded/timeline.js";
import { ROLE_LABEL } from "./theme.js";
import { commandLabel, sessionText, opTooltipText, wireHistoryCanvas } from "./history-view.js";

/** The keyboard, as the help dialog lists it. */
export const KEYS = [
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

/** Keys that act on the selected node: the recorded action each one performs. */
const NODE_KEYS = { c: "crash", r: "restart", e: "triggerElection", t: "transferLeadership", s: "snapshot" };

export class Controls {
  constructor(app) {
    this.app = app;
    /** A node being dragged to a partition group: { id, x0, y0, x, y, moved, target }. */
    this.drag = null;
    this.suppressClick = false;
  }

  get playback() { return this.app.playback; }

  /** Attach every listener, once. */
  wire() {
    this.wireTransport();
    this.wireRunForms();
    this.wireDialogs();
    this.wireClusterCanvas();
    this.wireHistoryCanvas();
    this.wireWindow();
    this.buildLegend();
  }

  // ---------- the transport bar ----------
  wireTransport() {
    const playback = this.playback;
    $("#play").addEventListener("click", () => playback.togglePlay());
    $("#step").addEventListener("click", () => playback.step());
    $("#speed").addEventListener("input", () => playback.setSpeedExp(Number($("#speed").value)));
    setText($("#speed-out"), playback.speedLabel());
    const slider = $("#timeline");
    slider.addEventListener("pointerdown", () => playback.beginScrub());
    slider.addEventListener("input", () => playback.scrubTo(Number(slider.value)));
    slider.addEventListener("pointerup", () => playback.endScrub());
    slider.addEventListener("change", () => { playback.pendingSeek = Number(slider.value); playback.previewSeek = null; playback.endScrub(); });
  }

  // ---------- a new run, settings ----------
  wireRunForms() {
    const app = this.app;
    $("#run-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const nodes = Number($("#nodes").value), seed = Math.max(0, Math.floor(Number($("#seed").value) || 0));
      // a run the simulator refuses (a seed past 2^53 - 1) changes nothing and says why
      try { app.newRun({ ...app.baseConfig(), nodes, seed }); } catch (err) { toast(`Cannot start this run: ${err.message}`, { error: true }); return; }
      toast(`New run: ${nodes} nodes, seed ${seed}`);
    });
    $("#nodes").addEventListener("change", () => $("#run-form").requestSubmit());
    $("#settings-btn").addEventListener("click", () => this.openSettings());
    $("#settings-form").addEventListener("submit", (e) => {
      if (e.submitter?.value !== "apply") return;
      try { app.newRun(this.settingsConfig()); toast("New run with these settings."); } catch (err) { toast(err.message, { error: true }); app.newRun(DEFAULT_CONFIG); }
    });
  }

  /** The settings dialog filled in from the run shown. */
  openSettings() {
    const c = this.app.timeline.config;
    $("#s-et-min").value = c.electionTimeoutMs[0]; $("#s-et-max").value = c.electionTimeoutMs[1];
    $("#s-hb").value = c.heartbeatMs; $("#s-snap").value = c.snapshotEvery;
    $("#s-lat-min").value = c.latencyMs[0]; $("#s-lat-max").value = c.latencyMs[1];
    $("#s-drop").value = c.dropRate; $("#s-dup").value = c.duplicateRate;
    $("#s-prevote").checked = !!c.preVote; $("#s-checkquorum").checked = !!c.checkQuorum;
    $("#s-leasereads").checked = !!c.leaseReads; $("#s-followerreads").checked = !!c.followerReads;
    $("#settings").showModal();
  }

  /** The configuration the settings dialog describes. */
  settingsConfig() {
    const n = (id) => Number($(id).value);
    return {
      ...this.app.baseConfig(),
      electionTimeoutMs: [n("#s-et-min"), Math.max(n("#s-et-min"), n("#s-et-max"))], heartbeatMs: n("#s-hb"),
      latencyMs: [n("#s-lat-min"), Math.max(n("#s-lat-min"), n("#s-lat-max"))], dropRate: n("#s-drop"), duplicateRate: n("#s-dup"),
      snapshotEvery: n("#s-snap"), preVote: $("#s-prevote").checked, checkQuorum: $("#s-checkquorum").checked,
      leaseReads: $("#s-leasereads").checked, followerReads: $("#s-followerreads").checked,
    };
  }

  // ---------- dialogs and side buttons ----------
  wireDialogs() {
    const app = this.app;
    $("#guide-btn").addEventListener("click", () => app.guide.toggleList());
    $("#share-btn").addEventListener("click", () => app.copyLink());
    $("#help-btn").addEventListener("click", () => this.openHelp());
    $("#intro-btn").addEventListener("click", () => $("#intro").showModal());
    $("#intro").addEventListener("close", () => {
      localStorage.setItem("distribkv.introSeen", "1");
      if ($("#intro").returnValue === "tour") app.guide.start("first-election");
    });
    $("#panel-btn").addEventListener("click", () => document.body.classList.toggle("side-open"));
  }

  openHelp() {
    $("#help-keys").innerHTML = KEYS.map(([k, d]) => `<tr><td>${k.split(" ").map((x) => `<kbd>${esc(x)}</kbd>`).join(" ")}</td><td>${esc(d)}</td></tr>`).join("");
    $("#help").showModal();
  }

  // ---------- the cluster canvas ----------
  wireClusterCanvas() {
    const canvas = $("#cluster");
    const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    canvas.addEventListener("pointerdown", (e) => {
      const [x, y] = at(e);
      const h = this.app.cluster.hit(x, y);
      if (h?.type === "node" && e.button === 0) { this.drag = { id: h.id, x0: x, y0: y, x, y, moved: false, target: null }; canvas.setPointerCapture(e.pointerId); }
    });
    canvas.addEventListener("pointerup", () => this.dropNode());
    canvas.addEventListener("pointermove", (e) => {
      const [x, y] = at(e);
      if (this.drag) this.dragNode(canvas, x, y, e);
      else this.hoverCanvas(canvas, x, y, e);
    });
    canvas.addEventListener("pointerleave", () => { this.app.hover = null; this.app.dirty = true; this.tooltip(null); });
    canvas.addEventListener("click", (e) => {
      if (this.suppressClick) { this.suppressClick = false; return; }
      const h = this.app.cluster.hit(...at(e));
      if (!h) this.app.select(null);
      else if (h.type === "row") this.app.select({ type: "node", id: h.id });
      else this.app.select(h);
    });
  }

  dragNode(canvas, x, y, e) {
    const d = this.drag;
    d.x = x; d.y = y;
    if (Math.hypot(x - d.x0, y - d.y0) > 6) d.moved = true;
    const h = this.app.cluster.hit(x, y);
    d.target = h?.type === "node" && h.id !== d.id ? h.id : null;
    this.app.dirty = true;
    canvas.style.cursor = "grabbing";
    this.tooltip(d.moved ? { type: "drag", d } : null, e.clientX, e.clientY);
  }

  /** A node dropped onto another joins that node's partition group; dropped into empty space, it gets a group of its own. */
  dropNode() {
    const app = this.app;
    const d = this.drag;
    this.drag = null;
    if (!d || !d.moved) return;
    this.suppressClick = true;
    app.dirty = true;
    const p = app.cluster.nodePos(d.id);
    if (!d.target && p && Math.hypot(d.x - p.x, d.y - p.y) < 40) return;
    const groups = app.networkCard.groupsFromState();
    const used = new Set([...groups].filter(([id]) => id !== d.id).map(([, g]) => g));
    let g = d.target ? groups.get(d.target) : 0;
    if (!d.target) while (used.has(g)) g++;
    groups.set(d.id, g);
    const lists = new Map();
    for (const [id, gi] of [...groups].sort((a, b) => a[0] - b[0])) { if (!lists.has(gi)) lists.set(gi, []); lists.get(gi).push(id); }
    const parts = [...lists.values()];
    app.networkCard.draft = null;
    app.act("partition", parts);
    if (app.lastActOk) toast(parts.length > 1 ? `Partition: ${parts.map((x) => x.join(",")).join(" | ")}` : "All nodes in one group again (cut links stay cut).");
  }

  hoverCanvas(canvas, x, y, e) {
    const h = this.app.cluster.hit(x, y);
    const key = (o) => (o ? `${o.type}:${o.id ?? o.key ?? ""}:${o.a ?? ""}:${o.b ?? ""}:${o.index ?? ""}` : "");
    if (key(h) !== key(this.app.hover)) { this.app.hover = h; this.app.dirty = true; }
    canvas.style.cursor = h ? "pointer" : "default";
    this.tooltip(h, e.clientX, e.clientY);
  }

  // ---------- the history canvas ----------
  wireHistoryCanvas() {
    wireHistoryCanvas($("#history"), this.app.historyView, {
      changed: () => { this.app.dirty = true; },
      tip: (op, x, y) => this.tooltip(op ? { type: "op", op } : null, x, y),
    });
  }

  // ---------- the window: size, colours, links, keys ----------
  wireWindow() {
    const app = this.app;
    new ResizeObserver(() => { app.layoutChanged(); }).observe($("#stage"));
    new ResizeObserver(() => { app.dirty = true; }).observe($("#history"));
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { app.theme.read(); app.dirty = true; this.buildLegend(); });
    app.narrowMq = matchMedia("(max-width: 1020px)");
    app.mediumMq = matchMedia("(max-width: 1500px)");
    app.narrowMq.addEventListener("change", () => app.updateDrawer());
    app.mediumMq.addEventListener("change", () => app.updateDrawer());
    app.updateDrawer();
    // a link pasted into this tab opens as on a fresh page: a bad one says why and opens the default run
    // (a link of the sharded mode reloads the page in that mode: main.js)
    window.addEventListener("hashchange", () => {
      if (location.hash === app.ownHash || isShardedHash(location.hash)) return;
      if (!app.loadFromHash()) app.newRun({ ...DEFAULT_CONFIG });
    });
    window.addEventListener("keydown", (e) => this.onKey(e));
  }

  buildLegend() {
    const T = this.app.theme;
    const roles = ["leader", "follower", "candidate", "precandidate", "down"].map((r) => `<span><i style="background:${T.role[r]}"></i>${ROLE_LABEL[r]}</span>`);
    const kinds = [["AppendEntries", "append"], ["Heartbeat", "heartbeat"], ["RequestVote", "vote"], ["PreVote", "pre-vote"], ["InstallSnapshot", "snapshot"], ["TimeoutNow", "timeout now"], ["ReadIndex", "read index"], ["ClientRequest", "client"]]
      .map(([k, label]) => `<span><i style="background:${T.msg[k]}"></i>${label}</span>`);
    $("#legend").innerHTML = roles.join("") + `<span style="margin-left:8px">messages:</span>` + kinds.join("") + `<span><i class="ring" style="border-color:${T.muted}"></i>reply</span>`;
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
      this.app.select(null);
      this.tooltip(null);
      document.body.classList.remove("side-open");
      return;
    }
    if (typing || document.querySelector("dialog[open]")) return;
    if (this.handleKey(e.key, e.shiftKey)) e.preventDefault();
  }

  /** Do what key `k` stands for (see KEYS); false if it stands for nothing. */
  handleKey(k, shift) {
    const app = this.app, playback = this.playback, tl = app.timeline;
    if (k in NODE_KEYS) {
      const id = app.selected?.type === "node" ? app.selected.id : null;
      if (id === null) toast("Select a node first (click it, or press 1–9).");
      else app.act(NODE_KEYS[k], id);
      return true;
    }
    if (/^[1-9]$/.test(k)) { app.selectNode(Number(k)); return true; }
    switch (k) {
      case " ": playback.togglePlay(); break;
      case "n": case "ArrowRight": playback.step(); break;
      case "ArrowLeft": playback.seek(Math.max(0, tl.display - (shift ? 100 : 10))); break;
      case "Home": playback.seek(0); break;
      case "End": playback.seek(tl.end); break;
      case "p": document.body.classList.add("side-open"); app.clientsCard.focus(); break;
      case "w": app.clientsCard.toggleWorkload(); break;
      case "h": app.act("heal"); break;
      case "d": if (app.selected?.type === "msg") app.act("dropMessage", app.selected.id); else toast("Select a message first (click a moving dot)."); break;
      case "[": playback.setSpeedExp(Math.log10(playback.speed) - 0.25); break;
      case "]": playback.setSpeedExp(Math.log10(playback.speed) + 0.25); break;
      case "g": app.guide.toggleList(); break;
      case "l": app.copyLink(); break;
      case "f": app.showFps = !app.showFps; $("#fps").hidden = !app.showFps; break;
      case "?": this.openHelp(); break;
      default: return false;
    }
    return true;
  }

  // ---------- tooltips ----------
  /** Show what is under the pointer (a hit from a canvas) at (x, y), or hide the tooltip. */
  tooltip(h, x, y) {
    showTooltip(h ? this.tooltipText(h) : null, x, y);
  }

  tooltipText(h) {
    const app = this.app;
    const st = app.state;
    switch (h.type) {
      case "node": case "row": return this.nodeTooltip(h);
      case "msg": {
        const m = st?.inFlight.find((x) => x.id === h.id);
        return m ? `${m.kind} ${m.from} → ${m.to}\n${sessionText(m.summary ?? "", app.clientsCache)}\nsent ${fmtTime(m.sentAt)}, arrives ${fmtTime(m.deliverAt)}\nclick to inspect or drop` : null;
      }
      case "link": {
        const cut = new Set((st?.links?.cut || []).map(([a, b]) => `${a}>${b}`));
        return `Link ${h.a} ↔ ${h.b}\n${h.a} → ${h.b}: ${cut.has(`${h.a}>${h.b}`) ? "cut" : "open"} · ${h.b} → ${h.a}: ${cut.has(`${h.b}>${h.a}`) ? "cut" : "open"}\nclick to cut or restore`;
      }
      case "client": {
        const c = app.clientsCache.find((c) => `c${c.id}` === h.key);
        return `Client ${h.key}${c ? `\n${c.busy ? "waiting for an answer" : "idle"} · thinks the leader is ${c.leaderGuess ?? "unknown"}` : ""}`;
      }
      case "drag": return h.d.target ? `Drop: put node ${h.d.id} in node ${h.d.target}'s partition group` : `Drop in empty space: node ${h.d.id} gets a partition group of its own`;
      case "op": return this.opTooltip(h.op);
      default: return "";
    }
  }

  /** A node on the ring, or a node's log row (and the entry under the pointer). */
  nodeTooltip(h) {
    const node = this.app.state?.nodes.find((n) => n.id === h.id);
    if (!node) return null;
    if (h.type === "row" && h.index) {
      const e = node.log.find((x) => x.index === h.index);
      if (e) return `Node ${node.id}, index ${e.index}, term ${e.term}\n${commandLabel(e, this.app.clientsCache)}\n${e.index <= node.commitIndex ? "committed" : "not committed yet"}`;
      return h.index <= (node.snapshotIndex ?? 0) ? `Node ${node.id}, index ${h.index}: compacted into the snapshot` : `Node ${node.id} has no entry ${h.index}`;
    }
    return `Node ${node.id} · ${node.up ? ROLE_LABEL[node.role] ?? node.role : "down"} · term ${node.term}\ncommit ${node.commitIndex} · applied ${node.appliedIndex} · last ${node.lastIndex ?? "?"}\n${Object.keys(node.kv || {}).length} keys in its store\nclick to inspect · drag onto another node or into empty space to partition`;
  }

  opTooltip(o) { return opTooltipText(o, this.app.highlightOps.has(o.id)); }

}
