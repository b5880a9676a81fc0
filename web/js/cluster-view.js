// The cluster canvas: nodes on a circle with their election timers, links
// (cut directions, partitions), messages moving from sentAt to deliverAt, the
// client group, and the logs side by side aligned by index. It only draws what
// state() says; the hit tests turn clicks back into ids for main.js.

import { MESSAGE_KINDS, ROLE_LABEL, fitCanvas } from "./theme.js";
import { isNodeId } from "./sim-adapter.js";

const TAU = Math.PI * 2;
const clamp = (x, a, b) => Math.max(a, Math.min(b, x));
const GROUP_COLORS = ["follower", "candidate", "learner", "leader", "precandidate"];

export function clientKey(x) {
  if (typeof x === "string") return /^\d+$/.test(x) ? `c${x}` : x;
  return `c${x}`;
}

export class ClusterView {
  constructor(canvas, theme) {
    this.canvas = canvas;
    this.theme = theme;
    this.g = null; // geometry
    this.cols = 30;
    this.msgPos = []; // [{ id, x, y }] from the last draw, for hit tests
  }

  /** How many log entries per node the grid can show (the page asks state({ logTail }) for that many). */
  logTail() { return this.cols; }

  _layout(w, h, n, clientKeys) {
    const key = `${w}x${h}:${n}:${clientKeys.join(",")}`;
    if (this.g && this.g.key === key) return this.g;
    const clientStrip = 54;
    // logs beside the ring when that leaves them room for a dozen columns or more, else under it
    const wide = w >= 760 && w >= h * 1.15 && w - Math.min(w * 0.56, h + clientStrip + 30) - 20 - 180 >= 220;
    const g = { key, w, h, n, wide };
    let ring, grid;
    if (wide) {
      const rw = Math.min(w * 0.56, h + clientStrip + 30);
      ring = { x: clientStrip, y: 0, w: rw - clientStrip, h: h - 26 };
      grid = { x: rw + 8, y: 14, w: w - rw - 20, h: h - 40 };
    } else {
      const rh = Math.max(240, h * 0.6);
      ring = { x: clientStrip, y: 0, w: w - clientStrip, h: rh };
      grid = { x: 12, y: rh + 6, w: w - 24, h: h - rh - 44 };
    }
    g.ring = ring; g.grid = grid;
    g.cx = ring.x + ring.w / 2;
    g.cy = ring.y + ring.h / 2 + 4;
    const rGuess = clamp(Math.min(ring.w, ring.h) / 2 * Math.sin(Math.PI / n) * 0.4, 15, 32);
    g.R = Math.max(60, Math.min(ring.w / 2 - rGuess - 58, ring.h / 2 - rGuess - 58));
    g.r = clamp(g.R * Math.sin(Math.PI / n) * 0.42, 15, 32);
    // neighbours closer than a full label's width get the short labels ("t3 · v2")
    g.compact = 2 * g.R * Math.sin(Math.PI / n) < 118;
    g.nodes = [];
    for (let i = 0; i < n; i++) {
      const a = -Math.PI / 2 + (TAU * i) / n;
      g.nodes.push({ id: i + 1, a, x: g.cx + g.R * Math.cos(a), y: g.cy + g.R * Math.sin(a) });
    }
    // clients: a small column at the left edge
    g.clients = new Map();
    const step = clamp((h - 60) / Math.max(1, clientKeys.length), 16, 28);
    clientKeys.forEach((k, i) => g.clients.set(k, { key: k, x: 26, y: 40 + i * step, w: 34, h: Math.min(20, step - 3) }));
    // log grid
    const rowH = clamp((grid.h - 34) / (n + 0.5), 15, 38);
    const labelW = 88, rightW = 92;
    // cells as big as the row allows while the logs are short; once they are long, at least 16 columns
    g.cellArea = grid.w - labelW - rightW;
    g.cellMax = clamp(rowH * 0.8, 12, 30);
    g.cellMin = Math.max(12, Math.min(g.cellMax, g.cellArea / 16));
    this.cols = Math.max(5, Math.floor(g.cellArea / g.cellMin));
    g.rowH = rowH; g.labelW = labelW; g.rightW = rightW; g.cellW = g.cellMin;
    g.gridTop = grid.y + 22;
    this.g = g;
    return g;
  }

  _endpoint(g, x) {
    if (isNodeId(x, g.n)) { const p = g.nodes[Number(x) - 1]; return { x: p.x, y: p.y, r: g.r }; }
    const c = g.clients.get(clientKey(x));
    if (c) return { x: c.x + c.w / 2 - 2, y: c.y, r: 10 };
    return { x: 26, y: g.h - 30, r: 6 };
  }

  /**
   * Draw one frame. `view` = { state, display, config, clients: [{id,busy}], ui: { selected, hover, partitionPreview } }
   */
  draw(view) {
    const { ctx, w, h } = fitCanvas(this.canvas);
    const T = this.theme;
    const st = view.state;
    ctx.clearRect(0, 0, w, h);
    if (!st) return;
    const n = st.nodes.length;
    const clientKeys = [];
    const seen = new Set();
    for (const c of view.clients) { const k = clientKey(c.id); if (!seen.has(k)) { seen.add(k); clientKeys.push(k); } }
    for (const m of st.inFlight) for (const e of [m.from, m.to]) if (!isNodeId(e, n)) { const k = clientKey(e); if (!seen.has(k)) { seen.add(k); clientKeys.push(k); } }
    const g = this._layout(w, h, n, clientKeys);
    const ui = view.ui || {};
    const sel = ui.selected || null;
    const hov = ui.hover || null;
    const display = view.display;
    const byId = new Map(st.nodes.map((nd) => [nd.id, nd]));

    // ---- partition halos ----
    const groups = ui.partitionPreview || st.links?.partition || null;
    if (groups && groups.length > 1) {
      groups.forEach((grp, gi) => {
        const col = T.role[GROUP_COLORS[gi % GROUP_COLORS.length]];
        ctx.fillStyle = col; ctx.globalAlpha = T.dark ? 0.16 : 0.12;
        for (const id of grp) { const p = g.nodes[id - 1]; if (!p) continue; ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 16, 0, TAU); ctx.fill(); }
        ctx.globalAlpha = 1;
      });
    }
    const groupOf = new Map();
    if (groups) groups.forEach((grp, gi) => grp.forEach((id) => groupOf.set(Number(id), gi)));

    // ---- links ----
    const cut = new Set((st.links?.cut || []).map(([a, b]) => `${a}>${b}`));
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
      const a = g.nodes[i], b = g.nodes[j];
      const ab = cut.has(`${a.id}>${b.id}`), ba = cut.has(`${b.id}>${a.id}`);
      const split = groups && groupOf.get(a.id) !== groupOf.get(b.id);
      const isSel = sel?.type === "link" && ((sel.a === a.id && sel.b === b.id) || (sel.a === b.id && sel.b === a.id));
      const isHov = hov?.type === "link" && ((hov.a === a.id && hov.b === b.id) || (hov.a === b.id && hov.b === a.id));
      ctx.lineWidth = isSel ? 3 : isHov ? 2 : 1;
      if (split) {
        ctx.strokeStyle = T.line; ctx.setLineDash([2, 6]);
      } else if (ab && ba) {
        ctx.strokeStyle = T.danger; ctx.setLineDash([5, 5]);
      } else {
        ctx.strokeStyle = isSel || isHov ? T.ink2 : T.line; ctx.setLineDash([]);
      }
      ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
      ctx.setLineDash([]);
      if (ab) this._cutMark(ctx, a, b, g);
      if (ba) this._cutMark(ctx, b, a, g);
    }

    // ---- election timers and vote arrows ----
    const etMax = (view.config?.electionTimeoutMs?.[1] ?? 300);
    for (const nd of st.nodes) {
      const p = g.nodes[nd.id - 1];
      if (nd.up && nd.electionDeadline !== null && nd.electionDeadline !== undefined && nd.role !== "leader") {
        const left = Math.max(0, nd.electionDeadline - display);
        const f = clamp(left / etMax, 0, 1);
        ctx.lineWidth = 3; ctx.lineCap = "round";
        ctx.strokeStyle = T.line;
        ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 6, 0, TAU); ctx.stroke();
        ctx.strokeStyle = f < 0.2 ? T.role.candidate : T.muted;
        if (f > 0) { ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 6, -Math.PI / 2, -Math.PI / 2 + TAU * f); ctx.stroke(); }
        ctx.lineCap = "butt";
      }
    }

    // ---- message trails ----
    const msgs = [];
    for (const m of st.inFlight) {
      const A = this._endpoint(g, m.from), B = this._endpoint(g, m.to);
      const dx = B.x - A.x, dy = B.y - A.y, len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      const off = 5; // keep the two directions apart: travel on the right-hand side
      const ox = -uy * off, oy = ux * off;
      const sx = A.x + ux * A.r + ox, sy = A.y + uy * A.r + oy;
      const ex = B.x - ux * B.r + ox, ey = B.y - uy * B.r + oy;
      const span = m.deliverAt - m.sentAt;
      const f = span > 0 ? clamp((display - m.sentAt) / span, 0, 1) : 1;
      const x = sx + (ex - sx) * f, y = sy + (ey - sy) * f;
      msgs.push({ m, x, y, sx, sy, ux, uy });
    }
    ctx.lineWidth = 1.5;
    for (const q of msgs) {
      ctx.strokeStyle = T.msgColor(q.m.kind); ctx.globalAlpha = 0.28;
      ctx.beginPath(); ctx.moveTo(q.sx, q.sy); ctx.lineTo(q.x, q.y); ctx.stroke();
    }
    ctx.globalAlpha = 1;

    // ---- nodes (their label blocks are drawn last, over the messages) ----
    this.labelBoxes = [];
    const labels = [];
    for (const nd of st.nodes) labels.push(this._node(ctx, g, nd, p0(g, nd.id), sel, hov, st, byId));

    // ---- clients ----
    this._clients(ctx, g, view.clients, sel, hov);

    // ---- message dots ----
    const msgLabels = msgs.length <= 30;
    const placed = [...this.labelBoxes];
    this.msgPos = [];
    ctx.font = `600 10px ${T.font}`;
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    for (const q of msgs) {
      const col = T.msgColor(q.m.kind);
      const info = MESSAGE_KINDS[q.m.kind];
      const isSel = sel?.type === "msg" && sel.id === q.m.id;
      const isHov = hov?.type === "msg" && hov.id === q.m.id;
      const rad = isSel || isHov ? 7 : 5;
      ctx.beginPath(); ctx.arc(q.x, q.y, rad, 0, TAU);
      if (info?.reply) {
        ctx.fillStyle = T.surface; ctx.fill();
        ctx.lineWidth = 2.2; ctx.strokeStyle = col; ctx.stroke();
      } else {
        ctx.fillStyle = col; ctx.fill();
        ctx.lineWidth = 1.2; ctx.strokeStyle = T.surface; ctx.stroke();
      }
      if (isSel) { ctx.lineWidth = 2; ctx.strokeStyle = T.focus; ctx.beginPath(); ctx.arc(q.x, q.y, rad + 4, 0, TAU); ctx.stroke(); }
      const span = q.m.deliverAt - q.m.sentAt;
      const f = span > 0 ? (display - q.m.sentAt) / span : 1;
      if ((msgLabels && f > 0.12 && f < 0.9) || isSel || isHov) {
        const text = info?.short ?? q.m.kind;
        const tw = ctx.measureText(text).width;
        const box = [q.x - tw / 2 - 2, q.y - rad - 13, tw + 4, 12];
        if (!isSel && !isHov && placed.some((b) => b[0] < box[0] + box[2] && box[0] < b[0] + b[2] && b[1] < box[1] + box[3] && box[1] < b[1] + b[3])) { this.msgPos.push({ id: q.m.id, x: q.x, y: q.y }); continue; }
        placed.push(box);
        ctx.fillStyle = T.surface; ctx.globalAlpha = 0.8;
        ctx.fillRect(q.x - tw / 2 - 2, q.y - rad - 13, tw + 4, 12);
        ctx.globalAlpha = 1;
        ctx.fillStyle = col;
        ctx.fillText(text, q.x, q.y - rad - 2);
      }
      this.msgPos.push({ id: q.m.id, x: q.x, y: q.y });
    }

    for (const block of labels) this._drawLabel(ctx, block);

    // ---- a node being dragged to a partition group ----
    if (ui.drag) {
      const d = ui.drag, from = g.nodes[d.id - 1];
      ctx.strokeStyle = T.focus; ctx.lineWidth = 1.5; ctx.setLineDash([4, 4]);
      ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(d.x, d.y); ctx.stroke();
      ctx.beginPath(); ctx.arc(d.x, d.y, g.r, 0, TAU); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = T.focus; ctx.font = `700 ${Math.round(g.r * 0.7)}px ${T.font}`; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillText(String(d.id), d.x, d.y);
      if (d.target) { const t = g.nodes[d.target - 1]; ctx.lineWidth = 3; ctx.strokeStyle = T.focus; ctx.beginPath(); ctx.arc(t.x, t.y, g.r + 14, 0, TAU); ctx.stroke(); }
    }

    // ---- log grid ----
    this._grid(ctx, g, st, sel, hov, byId);
  }

  _cutMark(ctx, a, b, g) {
    const T = this.theme;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy);
    const ux = dx / len, uy = dy / len;
    const ox = -uy * 9, oy = ux * 9;
    const mx = a.x + dx * 0.5 + ox, my = a.y + dy * 0.5 + oy;
    const s = 12;
    ctx.strokeStyle = T.danger; ctx.fillStyle = T.danger; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(mx - ux * s, my - uy * s); ctx.lineTo(mx + ux * s, my + uy * s); ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(mx + ux * (s + 5), my + uy * (s + 5));
    ctx.lineTo(mx + ux * s - uy * 4, my + uy * s + ux * 4);
    ctx.lineTo(mx + ux * s + uy * 4, my + uy * s - ux * 4);
    ctx.closePath(); ctx.fill();
    // the cross
    const c = 4.5;
    ctx.beginPath();
    ctx.moveTo(mx - c, my - c); ctx.lineTo(mx + c, my + c);
    ctx.moveTo(mx + c, my - c); ctx.lineTo(mx - c, my + c);
    ctx.lineWidth = 2.4; ctx.strokeStyle = T.surface; ctx.stroke();
    ctx.lineWidth = 1.6; ctx.strokeStyle = T.danger; ctx.stroke();
  }

  _node(ctx, g, nd, p, sel, hov, st, byId) {
    const T = this.theme;
    const r = g.r;
    const col = T.roleColor(nd.role, nd.up);
    const isSel = sel?.type === "node" && sel.id === nd.id;
    const isHov = hov?.type === "node" && hov.id === nd.id;
    if (isSel) {
      ctx.strokeStyle = T.focus; ctx.lineWidth = 2; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.arc(p.x, p.y, r + 12, 0, TAU); ctx.stroke(); ctx.setLineDash([]);
    }
    ctx.beginPath(); ctx.arc(p.x, p.y, r + (isHov ? 1.5 : 0), 0, TAU);
    if (!nd.up) {
      ctx.fillStyle = T.surface2; ctx.fill();
      ctx.setLineDash([4, 4]); ctx.lineWidth = 2; ctx.strokeStyle = col; ctx.stroke(); ctx.setLineDash([]);
    } else if (nd.role === "leader") {
      ctx.fillStyle = col; ctx.fill();
      ctx.lineWidth = 3; ctx.strokeStyle = col; ctx.stroke();
    } else {
      ctx.fillStyle = T.surface; ctx.fill();
      ctx.fillStyle = col; ctx.globalAlpha = 0.14; ctx.fill(); ctx.globalAlpha = 1;
      ctx.lineWidth = 3; ctx.strokeStyle = col;
      if (nd.role === "precandidate") ctx.setLineDash([5, 3]);
      ctx.stroke(); ctx.setLineDash([]);
    }
    ctx.fillStyle = nd.up ? (nd.role === "leader" ? "#fff" : T.ink) : T.muted;
    ctx.font = `700 ${Math.round(r * 0.85)}px ${T.font}`;
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(String(nd.id), p.x, p.y + 1);
    if (!nd.up) {
      ctx.strokeStyle = T.danger; ctx.lineWidth = 2.2;
      const c = r * 0.32, x = p.x + r * 0.72, y = p.y - r * 0.72;
      ctx.beginPath(); ctx.moveTo(x - c, y - c); ctx.lineTo(x + c, y + c); ctx.moveTo(x + c, y - c); ctx.lineTo(x - c, y + c); ctx.stroke();
    }

    // label block: below the node, above it for nodes at the top of the ring
    const sin = Math.sin(p.a);
    const lines = [];
    const m = st.membership;
    const member = !m || m.voters.includes(nd.id) ? "" : m.learners.includes(nd.id) ? (nd.role === "learner" ? "" : " · learner") : " · not a member";
    const roleText = (nd.up ? ROLE_LABEL[nd.role] ?? nd.role : "down") + member;
    lines.push({ text: roleText.toUpperCase(), font: `700 10.5px ${T.font}`, color: col, spacing: true });
    lines.push({ text: !g.compact ? `term ${nd.term}${nd.votedFor != null ? ` · voted ${nd.votedFor}` : ""}` : `t${nd.term}${nd.votedFor != null ? ` · v${nd.votedFor}` : ""}`, font: `11.5px ${T.font}`, color: T.ink2 });
    if (!g.compact && g.R >= 115) lines.push({ text: `commit ${nd.commitIndex}${nd.appliedIndex !== nd.commitIndex ? ` · applied ${nd.appliedIndex}` : ""}`, font: `11px ${T.font}`, color: T.muted });
    if (nd.up && nd.role === "candidate") {
      let votes = 0;
      for (const o of st.nodes) if (o.votedFor === nd.id && o.term === nd.term) votes++;
      lines.push({ text: `${votes} of ${st.membership?.voters.length ?? st.nodes.length} votes`, font: `600 11px ${T.font}`, color: col });
    }
    const lh = 14;
    const gap = r + 11;
    let y = sin < -0.6 ? p.y - gap - lines.length * lh + lh / 2 : p.y + gap + lh / 2 - 2;
    const block = [];
    for (const l of lines) {
      ctx.font = l.font;
      const tw = ctx.measureText(l.text).width;
      const box = [p.x - tw / 2 - 3, y - lh / 2, tw + 6, lh];
      this.labelBoxes.push(box);
      block.push({ ...l, x: p.x, y, box });
      y += lh;
    }
    return block;
  }

  /** One node's label lines, on a soft backdrop that keeps them readable over links and messages. */
  _drawLabel(ctx, block) {
    const T = this.theme;
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (const l of block) {
      ctx.font = l.font;
      ctx.fillStyle = T.bg; ctx.globalAlpha = 0.8;
      ctx.fillRect(...l.box);
      ctx.globalAlpha = 1;
      ctx.fillStyle = l.color;
      if (l.spacing && "letterSpacing" in ctx) ctx.letterSpacing = "0.06em";
      ctx.fillText(l.text, l.x, l.y);
      if ("letterSpacing" in ctx) ctx.letterSpacing = "0px";
    }
  }

  _clients(ctx, g, clients, sel, hov) {
    const T = this.theme;
    if (!g.clients.size) return;
    ctx.font = `600 10px ${T.font}`; ctx.fillStyle = T.muted; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    ctx.fillText("CLIENTS", 10, 20);
    const busy = new Map(clients.map((c) => [clientKey(c.id), c.busy]));
    for (const c of g.clients.values()) {
      const x = c.x - c.w / 2, y = c.y - c.h / 2;
      const isSel = sel?.type === "client" && sel.key === c.key;
      const b = busy.get(c.key);
      ctx.beginPath();
      roundRect(ctx, x, y, c.w, c.h, 5);
      ctx.fillStyle = b ? T.msg.ClientRequest : T.surface; ctx.fill();
      ctx.lineWidth = isSel || hov?.key === c.key ? 2 : 1.2; ctx.strokeStyle = T.msg.ClientRequest; ctx.stroke();
      ctx.fillStyle = b ? (T.dark ? "#0d1a19" : "#fff") : T.ink2;
      ctx.font = `600 10.5px ${T.mono}`; ctx.textAlign = "center";
      ctx.fillText(c.key, c.x, c.y + 0.5);
    }
  }

  _grid(ctx, g, st, sel, hov, byId) {
    const T = this.theme;
    const n = st.nodes.length;
    const { grid, rowH, labelW } = g;
    let last = 0;
    for (const nd of st.nodes) last = Math.max(last, nd.lastIndex ?? (nd.log.length ? nd.log[nd.log.length - 1].index : 0));
    const cellW = Math.max(g.cellMin, Math.min(g.cellMax, g.cellArea / Math.max(10, last + 2)));
    g.cellW = cellW;
    const cols = Math.min(this.cols, Math.max(5, Math.floor(g.cellArea / cellW)));
    const first = Math.max(1, last - cols + 1);
    g.firstIndex = first;
    const x0 = grid.x + labelW;
    const top = g.gridTop;
    // the cluster's leader, as the simulator sees it (a cut-off old leader may still think it leads)
    const leader = st.nodes.find((node) => node.id === st.leader) ?? null;
    const prog = new Map((leader?.progress || []).map((p) => [Number(p.id), p]));

    ctx.textBaseline = "middle";
    ctx.font = `600 11px ${T.font}`; ctx.fillStyle = T.muted; ctx.textAlign = "left";
    ctx.fillText("LOGS", grid.x, top - 13);
    ctx.font = `10px ${T.mono}`; ctx.textAlign = "center";
    const every = cellW >= 20 ? 5 : 10;
    for (let i = first; i <= first + cols - 1; i++) {
      if (i % every === 0 || i === first) ctx.fillText(String(i), x0 + (i - first + 0.5) * cellW, top - 8);
    }
    const cellH = rowH - 6;
    for (let k = 0; k < n; k++) {
      const nd = st.nodes[k];
      const y = top + k * rowH;
      const cy = y + rowH / 2;
      const isSel = sel?.type === "node" && sel.id === nd.id;
      if (isSel || (hov?.type === "node" && hov.id === nd.id)) {
        ctx.fillStyle = T.surface2; ctx.fillRect(grid.x - 4, y, grid.w + 8, rowH);
      }
      // row label
      const col = T.roleColor(nd.role, nd.up);
      ctx.beginPath(); ctx.arc(grid.x + 7, cy, 5, 0, TAU); ctx.fillStyle = col; ctx.fill();
      ctx.textAlign = "left"; ctx.fillStyle = nd.up ? T.ink : T.muted; ctx.font = `600 12px ${T.font}`;
      ctx.fillText(`node ${nd.id}`, grid.x + 17, cy);
      ctx.font = `11px ${T.mono}`; ctx.fillStyle = T.muted; ctx.textAlign = "right";
      ctx.fillText(`t${nd.term}`, x0 - 6, cy);

      ctx.globalAlpha = nd.up ? 1 : 0.45;
      // compacted prefix
      const snapEnd = Math.min(nd.snapshotIndex ?? 0, first + cols - 1);
      if (snapEnd >= first) {
        const sx = x0, sw = (snapEnd - first + 1) * cellW;
        ctx.fillStyle = T.surface2; ctx.fillRect(sx, cy - cellH / 2, sw, cellH);
        ctx.save(); ctx.beginPath(); ctx.rect(sx, cy - cellH / 2, sw, cellH); ctx.clip();
        ctx.strokeStyle = T.lineStrong; ctx.lineWidth = 1;
        for (let hx = sx - cellH; hx < sx + sw; hx += 6) { ctx.beginPath(); ctx.moveTo(hx, cy + cellH / 2); ctx.lineTo(hx + cellH, cy - cellH / 2); ctx.stroke(); }
        ctx.restore();
        if (sw > 52) { ctx.fillStyle = T.muted; ctx.font = `600 10px ${T.font}`; ctx.textAlign = "center"; ctx.fillText(`snapshot ≤ ${nd.snapshotIndex}`, sx + sw / 2, cy); }
      }
      // a log that ends before the window
      const ends = nd.lastIndex ?? 0;
      if (ends < first && snapEnd < first) {
        ctx.fillStyle = T.muted; ctx.font = `italic 11px ${T.font}`; ctx.textAlign = "left";
        ctx.fillText(ends === 0 ? "empty log" : `◂ log ends at index ${ends}`, x0 + 4, cy);
      }
      // entries
      const durable = nd.durableIndex ?? nd.lastIndex;
      for (const e of nd.log) {
        if (e.index < first) continue;
        if (e.index > first + cols - 1) break;
        const x = x0 + (e.index - first) * cellW;
        const committed = e.index <= nd.commitIndex;
        const tc = T.termColor(e.term);
        if (committed) {
          ctx.fillStyle = tc; ctx.fillRect(x + 1, cy - cellH / 2, cellW - 2, cellH);
        } else {
          ctx.fillStyle = T.surface; ctx.fillRect(x + 1, cy - cellH / 2, cellW - 2, cellH);
          ctx.strokeStyle = tc; ctx.lineWidth = 2; ctx.setLineDash([3, 2]);
          ctx.strokeRect(x + 2, cy - cellH / 2 + 1, cellW - 4, cellH - 2); ctx.setLineDash([]);
        }
        if (cellW >= 15) {
          ctx.fillStyle = committed ? (T.dark ? "#f2f4f6" : "#1d232a") : T.ink2;
          ctx.font = `${cellW >= 23 ? 12 : cellW >= 19 ? 10.5 : 9}px ${T.mono}`; ctx.textAlign = "center";
          ctx.fillText(String(e.term), x + cellW / 2, cy + 0.5);
        }
        if (e.index > durable) { ctx.fillStyle = T.warn; ctx.beginPath(); ctx.arc(x + cellW - 4, cy - cellH / 2 + 3, 2.2, 0, TAU); ctx.fill(); }
      }
      // snapshot boundary
      if ((nd.snapshotIndex ?? 0) >= first - 1 && nd.snapshotIndex > 0 && nd.snapshotIndex <= first + cols - 1) {
        const bx = x0 + (nd.snapshotIndex - first + 1) * cellW;
        ctx.fillStyle = T.learner ?? T.role.learner; ctx.fillStyle = T.role.learner;
        ctx.fillRect(bx - 1.5, cy - cellH / 2 - 2, 3, cellH + 4);
      }
      // commit index marker
      if (nd.commitIndex >= first && nd.commitIndex <= first + cols - 1) {
        const mx = x0 + (nd.commitIndex - first + 0.5) * cellW;
        ctx.fillStyle = T.ink; ctx.beginPath();
        ctx.moveTo(mx, cy + cellH / 2 - 1); ctx.lineTo(mx - 4, cy + cellH / 2 + 4); ctx.lineTo(mx + 4, cy + cellH / 2 + 4); ctx.closePath(); ctx.fill();
      }
      ctx.globalAlpha = 1;
      // the leader's view of this follower
      const rx = x0 + cols * cellW + 8;
      ctx.textAlign = "left"; ctx.font = `11px ${T.font}`;
      const p = prog.get(nd.id);
      if (leader && leader.id === nd.id) {
        ctx.fillStyle = T.role.leader; ctx.font = `600 11px ${T.font}`; ctx.fillText("leader", rx, cy);
      } else if (p) {
        const pc = p.state === "replicate" ? T.ok : p.state === "probe" ? T.warn : T.role.learner;
        ctx.fillStyle = pc;
        ctx.fillText(`${p.state}${p.inflight ? ` · ${p.inflight}✈` : ""}`, rx, cy - 6);
        ctx.fillStyle = T.muted; ctx.font = `10px ${T.mono}`;
        ctx.fillText(`m${p.matchIndex} n${p.nextIndex}`, rx, cy + 7);
        // match underline and next-index arrow
        const mEnd = Math.min(p.matchIndex, first + cols - 1);
        if (mEnd >= first) {
          ctx.fillStyle = T.role.leader; ctx.globalAlpha = 0.85;
          ctx.fillRect(x0, cy - cellH / 2 - 3, (mEnd - first + 1) * cellW, 2);
          ctx.globalAlpha = 1;
        }
        if (p.nextIndex >= first && p.nextIndex <= first + cols - 1) {
          const nx = x0 + (p.nextIndex - first) * cellW + 1;
          ctx.strokeStyle = T.role.leader; ctx.lineWidth = 1.5;
          ctx.beginPath(); ctx.moveTo(nx, cy - cellH / 2 - 6); ctx.lineTo(nx + 5, cy - cellH / 2 - 2); ctx.lineTo(nx, cy - cellH / 2 + 2); ctx.stroke();
        }
      } else if (!nd.up) {
        ctx.fillStyle = T.muted; ctx.fillText("down", rx, cy);
      }
    }
    g.gridRows = { top, rowH, x0, cols, first };
    // a line of legend under the grid
    const ly = top + n * rowH + 12;
    if (ly < g.h - 40) {
      ctx.font = `10.5px ${T.font}`; ctx.fillStyle = T.muted; ctx.textAlign = "left";
      const parts = ["number = term", "filled = committed", "dashed = not yet committed", "corner dot = not yet on disk", "▲ commit index", "hatched = snapshot", "green bar / ▸ = the leader's match / next index"];
      let line = "", yy = ly;
      for (const part of parts) {
        const next = line ? `${line} · ${part}` : part;
        if (ctx.measureText(next).width > grid.w && line) { if (yy < g.h - 40) ctx.fillText(line, grid.x, yy); yy += 14; line = part; } else line = next;
      }
      if (line && yy < g.h - 40) ctx.fillText(line, grid.x, yy);
    }
  }

  /** What is under (x, y) in CSS pixels? */
  hit(x, y) {
    const g = this.g;
    if (!g) return null;
    let best = null, bd = 9;
    for (const m of this.msgPos) { const d = Math.hypot(m.x - x, m.y - y); if (d < bd) { bd = d; best = { type: "msg", id: m.id }; } }
    if (best) return best;
    for (const p of g.nodes) if (Math.hypot(p.x - x, p.y - y) <= g.r + 6) return { type: "node", id: p.id };
    for (const c of g.clients.values()) if (Math.abs(c.x - x) <= c.w / 2 && Math.abs(c.y - y) <= c.h / 2) return { type: "client", key: c.key };
    if (g.gridRows && x >= g.grid.x - 4 && x <= g.grid.x + g.grid.w && y >= g.gridRows.top && y < g.gridRows.top + g.n * g.gridRows.rowH) {
      const row = Math.floor((y - g.gridRows.top) / g.gridRows.rowH);
      const col = Math.floor((x - g.gridRows.x0) / g.cellW);
      return { type: "row", id: row + 1, index: col >= 0 && col < g.gridRows.cols ? g.gridRows.first + col : null };
    }
    let link = null, ld = 6;
    for (let i = 0; i < g.n; i++) for (let j = i + 1; j < g.n; j++) {
      const a = g.nodes[i], b = g.nodes[j];
      const d = segDist(x, y, a.x, a.y, b.x, b.y);
      if (d < ld && Math.hypot(a.x - x, a.y - y) > g.r + 4 && Math.hypot(b.x - x, b.y - y) > g.r + 4) { ld = d; link = { type: "link", a: a.id, b: b.id }; }
    }
    return link;
  }

  nodePos(id) { const p = this.g?.nodes[id - 1]; return p ? { x: p.x, y: p.y } : null; }
}

function p0(g, id) { return g.nodes[id - 1]; }

function segDist(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const t = clamp(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0, 1);
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
