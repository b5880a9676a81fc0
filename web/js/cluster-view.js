// The cluster canvas: nodes on a circle with their election timers, links
// (cut directions, partitions), messages moving from sentAt to deliverAt, the
// client group, and the logs side by side aligned by index (log-grid.js). It
// only draws what state() says; the hit tests turn clicks back into ids for
// controls.js.

import { MESSAGE_KINDS, ROLE_LABEL, fitCanvas } from "./theme.js";
import { isNodeId } from "./sim-adapter.js";
import { drawLogGrid } from "./log-grid.js";

const TAU = Math.PI * 2;
const clamp = (x, a, b) => Math.max(a, Math.min(b, x));
const GROUP_COLORS = ["follower", "candidate", "learner", "leader", "precandidate"];

export function clientKey(x) {
  if (typeof x === "string") return /^\d+$/.test(x) ? `c${x}` : x;
  return `c${x}`;
}

/** The clients to draw, in order: those the simulator lists, then any other end of a message in flight. */
function clientKeys(clients, st) {
  const keys = new Set(clients.map((c) => clientKey(c.id)));
  for (const m of st.inFlight) for (const end of [m.from, m.to]) if (!isNodeId(end, st.nodes.length)) keys.add(clientKey(end));
  return [...keys];
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
   * Draw one frame. `view` = { state, display, config, clients: [{id,busy}], ui: { selected, hover, partitionPreview, drag } }
   */
  draw(view) {
    const { ctx, w, h } = fitCanvas(this.canvas);
    const st = view.state;
    ctx.clearRect(0, 0, w, h);
    if (!st) return;
    const g = this._layout(w, h, st.nodes.length, clientKeys(view.clients, st));
    const ui = view.ui || {};
    const groups = ui.partitionPreview || st.links?.partition || null;
    this._partitionHalos(ctx, g, groups);
    this._links(ctx, g, st, groups, ui);
    this._electionTimers(ctx, g, st, view);
    const messages = this._messagePositions(g, st, view.display);
    this._messageTrails(ctx, messages);
    // the nodes; their label blocks are drawn last, over the messages
    this.labelBoxes = [];
    const labels = st.nodes.map((node) => this._node(ctx, g, node, ui, st));
    this._clients(ctx, g, view.clients, ui.selected, ui.hover);
    this._messageDots(ctx, messages, ui, view.display);
    for (const block of labels) this._drawLabel(ctx, block);
    if (ui.drag) this._dragGhost(ctx, g, ui.drag);
    drawLogGrid(ctx, this.theme, g, st, this.cols, ui.selected, ui.hover);
  }

  /** A halo around each node in the colour of its partition group. */
  _partitionHalos(ctx, g, groups) {
    const T = this.theme;
    if (!groups || groups.length <= 1) return;
    groups.forEach((group, gi) => {
      ctx.fillStyle = T.role[GROUP_COLORS[gi % GROUP_COLORS.length]]; ctx.globalAlpha = T.dark ? 0.16 : 0.12;
      for (const id of group) { const p = g.nodes[id - 1]; if (!p) continue; ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 16, 0, TAU); ctx.fill(); }
      ctx.globalAlpha = 1;
    });
  }

  /** The links between nodes: dotted across a partition, dashed red when cut both ways, a mark on each cut direction. */
  _links(ctx, g, st, groups, ui) {
    const T = this.theme;
    const sel = ui.selected, hov = ui.hover;
    const groupOf = new Map();
    if (groups) groups.forEach((group, gi) => group.forEach((id) => groupOf.set(Number(id), gi)));
    const cut = new Set((st.links?.cut || []).map(([a, b]) => `${a}>${b}`));
    const isLink = (o, a, b) => o?.type === "link" && ((o.a === a.id && o.b === b.id) || (o.a === b.id && o.b === a.id));
    for (let i = 0; i < g.n; i++) for (let j = i + 1; j < g.n; j++) {
      const a = g.nodes[i], b = g.nodes[j];
      const ab = cut.has(`${a.id}>${b.id}`), ba = cut.has(`${b.id}>${a.id}`);
      const split = groups && groupOf.get(a.id) !== groupOf.get(b.id);
      const isSel = isLink(sel, a, b), isHov = isLink(hov, a, b);
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
  }

  /** An arc around each up node that is not leading: the time left on its election timer. */
  _electionTimers(ctx, g, st, view) {
    const T = this.theme;
    const etMax = (view.config?.electionTimeoutMs?.[1] ?? 300);
    for (const node of st.nodes) {
      if (!node.up || node.electionDeadline === null || node.electionDeadline === undefined || node.role === "leader") continue;
      const p = g.nodes[node.id - 1];
      const f = clamp(Math.max(0, node.electionDeadline - view.display) / etMax, 0, 1);
      ctx.lineWidth = 3; ctx.lineCap = "round";
      ctx.strokeStyle = T.line;
      ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 6, 0, TAU); ctx.stroke();
      ctx.strokeStyle = f < 0.2 ? T.role.candidate : T.muted;
      if (f > 0) { ctx.beginPath(); ctx.arc(p.x, p.y, g.r + 6, -Math.PI / 2, -Math.PI / 2 + TAU * f); ctx.stroke(); }
      ctx.lineCap = "butt";
    }
  }

  /** Where each message in flight is now, between its sender and its recipient. */
  _messagePositions(g, st, display) {
    return st.inFlight.map((m) => {
      const A = this._endpoint(g, m.from), B = this._endpoint(g, m.to);
      const dx = B.x - A.x, dy = B.y - A.y, len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      const off = 5; // keep the two directions apart: travel on the right-hand side
      const ox = -uy * off, oy = ux * off;
      const sx = A.x + ux * A.r + ox, sy = A.y + uy * A.r + oy;
      const ex = B.x - ux * B.r + ox, ey = B.y - uy * B.r + oy;
      const span = m.deliverAt - m.sentAt;
      const f = span > 0 ? clamp((display - m.sentAt) / span, 0, 1) : 1;
      return { m, x: sx + (ex - sx) * f, y: sy + (ey - sy) * f, sx, sy };
    });
  }

  _messageTrails(ctx, messages) {
    const T = this.theme;
    ctx.lineWidth = 1.5;
    for (const q of messages) {
      ctx.strokeStyle = T.msgColor(q.m.kind); ctx.globalAlpha = 0.28;
      ctx.beginPath(); ctx.moveTo(q.sx, q.sy); ctx.lineTo(q.x, q.y); ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }

  /** A dot per message (hollow for replies) and, where there is room, its short name; remembered for hit tests. */
  _messageDots(ctx, messages, ui, display) {
    const T = this.theme;
    const withLabels = messages.length <= 30;
    const placed = [...this.labelBoxes];
    const overlaps = (box) => placed.some((b) => b[0] < box[0] + box[2] && box[0] < b[0] + b[2] && b[1] < box[1] + box[3] && box[1] < b[1] + b[3]);
    this.msgPos = [];
    ctx.font = `600 10px ${T.font}`;
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    for (const q of messages) {
      const col = T.msgColor(q.m.kind);
      const info = MESSAGE_KINDS[q.m.kind];
      const isSel = ui.selected?.type === "msg" && ui.selected.id === q.m.id;
      const isHov = ui.hover?.type === "msg" && ui.hover.id === q.m.id;
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
      this.msgPos.push({ id: q.m.id, x: q.x, y: q.y });
      const span = q.m.deliverAt - q.m.sentAt;
      const f = span > 0 ? (display - q.m.sentAt) / span : 1;
      if (!((withLabels && f > 0.12 && f < 0.9) || isSel || isHov)) continue;
      const text = info?.short ?? q.m.kind;
      const tw = ctx.measureText(text).width;
      const box = [q.x - tw / 2 - 2, q.y - rad - 13, tw + 4, 12];
      if (!isSel && !isHov && overlaps(box)) continue;
      placed.push(box);
      ctx.fillStyle = T.surface; ctx.globalAlpha = 0.8;
      ctx.fillRect(...box);
      ctx.globalAlpha = 1;
      ctx.fillStyle = col;
      ctx.fillText(text, q.x, q.y - rad - 2);
    }
  }

  /** A node being dragged to a partition group: a ghost at the pointer, the target ringed. */
  _dragGhost(ctx, g, d) {
    const T = this.theme;
    const from = g.nodes[d.id - 1];
    ctx.strokeStyle = T.focus; ctx.lineWidth = 1.5; ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(d.x, d.y); ctx.stroke();
    ctx.beginPath(); ctx.arc(d.x, d.y, g.r, 0, TAU); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = T.focus; ctx.font = `700 ${Math.round(g.r * 0.7)}px ${T.font}`; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(String(d.id), d.x, d.y);
    if (d.target) { const t = g.nodes[d.target - 1]; ctx.lineWidth = 3; ctx.strokeStyle = T.focus; ctx.beginPath(); ctx.arc(t.x, t.y, g.r + 14, 0, TAU); ctx.stroke(); }
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

  /** Node `node` on the ring; returns its label block, drawn later over the messages. */
  _node(ctx, g, node, ui, st) {
    const p = g.nodes[node.id - 1];
    this._nodeCircle(ctx, g, node, p, ui);
    return this._nodeLabel(ctx, g, node, p, st);
  }

  /** The circle: filled for the leader, dashed for a pre-candidate, hollow with a cross when down. */
  _nodeCircle(ctx, g, node, p, ui) {
    const T = this.theme;
    const r = g.r;
    const col = T.roleColor(node.role, node.up);
    const isSel = ui.selected?.type === "node" && ui.selected.id === node.id;
    const isHov = ui.hover?.type === "node" && ui.hover.id === node.id;
    if (isSel) {
      ctx.strokeStyle = T.focus; ctx.lineWidth = 2; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.arc(p.x, p.y, r + 12, 0, TAU); ctx.stroke(); ctx.setLineDash([]);
    }
    ctx.beginPath(); ctx.arc(p.x, p.y, r + (isHov ? 1.5 : 0), 0, TAU);
    if (!node.up) {
      ctx.fillStyle = T.surface2; ctx.fill();
      ctx.setLineDash([4, 4]); ctx.lineWidth = 2; ctx.strokeStyle = col; ctx.stroke(); ctx.setLineDash([]);
    } else if (node.role === "leader") {
      ctx.fillStyle = col; ctx.fill();
      ctx.lineWidth = 3; ctx.strokeStyle = col; ctx.stroke();
    } else {
      ctx.fillStyle = T.surface; ctx.fill();
      ctx.fillStyle = col; ctx.globalAlpha = 0.14; ctx.fill(); ctx.globalAlpha = 1;
      ctx.lineWidth = 3; ctx.strokeStyle = col;
      if (node.role === "precandidate") ctx.setLineDash([5, 3]);
      ctx.stroke(); ctx.setLineDash([]);
    }
    ctx.fillStyle = node.up ? (node.role === "leader" ? "#fff" : T.ink) : T.muted;
    ctx.font = `700 ${Math.round(r * 0.85)}px ${T.font}`;
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(String(node.id), p.x, p.y + 1);
    if (!node.up) {
      ctx.strokeStyle = T.danger; ctx.lineWidth = 2.2;
      const c = r * 0.32, x = p.x + r * 0.72, y = p.y - r * 0.72;
      ctx.beginPath(); ctx.moveTo(x - c, y - c); ctx.lineTo(x + c, y + c); ctx.moveTo(x + c, y - c); ctx.lineTo(x - c, y + c); ctx.stroke();
    }
  }

  /** The label block (role and membership, term and vote, commit, a candidate's votes): below the node, above it at the top of the ring. */
  _nodeLabel(ctx, g, node, p, st) {
    const T = this.theme;
    const col = T.roleColor(node.role, node.up);
    const lines = [];
    const m = st.membership;
    const member = !m || m.voters.includes(node.id) ? "" : m.learners.includes(node.id) ? (node.up && node.role === "learner" ? "" : " · learner") : " · not a member";
    const roleText = (node.up ? ROLE_LABEL[node.role] ?? node.role : "down") + member;
    lines.push({ text: roleText.toUpperCase(), font: `700 10.5px ${T.font}`, color: col, spacing: true });
    lines.push({ text: !g.compact ? `term ${node.term}${node.votedFor != null ? ` · voted ${node.votedFor}` : ""}` : `t${node.term}${node.votedFor != null ? ` · v${node.votedFor}` : ""}`, font: `11.5px ${T.font}`, color: T.ink2 });
    if (!g.compact && g.R >= 115) lines.push({ text: `commit ${node.commitIndex}${node.appliedIndex !== node.commitIndex ? ` · applied ${node.appliedIndex}` : ""}`, font: `11px ${T.font}`, color: T.muted });
    if (node.up && node.role === "candidate") {
      const votes = st.nodes.filter((other) => other.votedFor === node.id && other.term === node.term).length;
      lines.push({ text: `${votes} of ${st.membership?.voters.length ?? st.nodes.length} votes`, font: `600 11px ${T.font}`, color: col });
    }
    const lh = 14;
    const gap = g.r + 11;
    let y = Math.sin(p.a) < -0.6 ? p.y - gap - lines.length * lh + lh / 2 : p.y + gap + lh / 2 - 2;
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

/** The distance from (px, py) to the segment from (ax, ay) to (bx, by). */
export function segDist(px, py, ax, ay, bx, by) {
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
