// Drawing the sharded service on the stage canvas: the hosts on a ring, each
// listing the group replicas it holds (the leader's filled); the messages in
// flight between hosts (shard pushes drawn large, with the shard's number);
// the workload clients, each with a line to the leader of the group its key
// is routed to; and the shard map (one cell per shard, in its owner's
// colour; a moving shard striped and marked with where it comes from); the
// links between hosts that share a group (a cut direction marked in red,
// as on the single group's canvas).

import { segDist } from "../cluster-view.js";

const GROUP_COLORS = ["#3f6fd8", "#d2802b", "#2c9a8c", "#b0489a", "#7a8b2e", "#c6362f", "#5b5fc7", "#8f6a3a", "#2f8fbf", "#9a4b4b", "#4d7f5a", "#a05cc8"];

/** A group's colour (the controller's is the ink's). */
export function groupColor(group, ink = "#444") {
  if (group === 0) return ink;
  return GROUP_COLORS[(group - 100) % GROUP_COLORS.length] ?? ink;
}

export const groupName = (g) => (g === 0 ? "controller" : `group ${g}`);

/** Where everything is, for drawing and for clicks. */
export function layout(state, w, h) {
  const n = state.hosts.length;
  const mapH = 74;
  const left = 150; // the clients' column
  const cx = left + (w - left) / 2, cy = (h - mapH) / 2 + 6;
  const rows = 3, cols = Math.ceil(n / rows);
  const hosts = state.hosts.map((host, i) => {
    const bw = 124, bh = 22 + 15 * Math.max(1, host.replicas.length);
    let x, y;
    if (n <= 6) {
      // a ring
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      x = cx + Math.max(80, Math.min((w - left) * 0.34, 260)) * Math.cos(a);
      y = cy + Math.max(60, (h - mapH) * 0.34) * Math.sin(a);
    } else {
      // columns of three hosts (the lab layout: the controller's hosts, then each group's)
      // (the middle one set aside, so that the link between the other two passes it by)
      const col = Math.floor(i / rows), row = i % rows;
      x = left + ((w - left) * (col + 0.5)) / cols + (row === 1 ? 1 : -1) * Math.min(46, (w - left) / cols / 5);
      y = 40 + ((h - mapH - 60) * (row + 0.5)) / rows;
    }
    return { id: host.id, x, y, w: bw, h: bh, box: [x - bw / 2, y - bh / 2, bw, bh] };
  });
  const cell = Math.min(46, (w - 40) / Math.max(1, state.shards.length));
  const mapX = (w - cell * state.shards.length) / 2, mapY = h - mapH + 22;
  const shards = state.shards.map((s, i) => ({ shard: s.shard, box: [mapX + i * cell + 2, mapY, cell - 4, 34] }));
  // the links: every pair of hosts that share a group (the controller's included), and any cut one
  const pairs = new Map();
  const add = (a, b) => { if (a !== b) pairs.set(a < b ? `${a}-${b}` : `${b}-${a}`, [Math.min(a, b), Math.max(a, b)]); };
  for (const g of state.groups) for (const a of g.hosts) for (const b of g.hosts) add(a, b);
  for (const [a, b] of state.links?.cut ?? []) if (typeof a === "number" && typeof b === "number") add(a, b);
  const links = [...pairs.values()];
  return { hosts, shards, mapY, links, msgs: [] };
}

/** What is under a point, for clicks: a message { type: "msg", id }, a host { type: "host", id }, a shard { type: "shard", id }, a link { type: "link", a, b }, or null. */
export function hit(lay, x, y) {
  const inside = ([bx, by, bw, bh]) => x >= bx && x <= bx + bw && y >= by && y <= by + bh;
  let msg = null, best = 9;
  for (const m of lay.msgs) { const d = Math.hypot(m.x - x, m.y - y); if (d < best) { best = d; msg = { type: "msg", id: m.id }; } }
  if (msg) return msg;
  const host = lay.hosts.find((h) => inside(h.box));
  if (host) return { type: "host", id: host.id };
  const shard = lay.shards.find((s) => inside(s.box));
  if (shard) return { type: "shard", id: shard.shard };
  const byId = new Map(lay.hosts.map((p) => [p.id, p]));
  let link = null, ld = 6;
  for (const [a, b] of lay.links) {
    const pa = byId.get(a), pb = byId.get(b);
    const d = segDist(x, y, pa.x, pa.y, pb.x, pb.y);
    if (d < ld) { ld = d; link = { type: "link", a, b }; }
  }
  return link;
}

/** The links between hosts: faint, dashed red when cut both ways, a red mark on each cut direction; the selected one thick. */
function drawLinks(ctx, lay, byId, state, theme, selected) {
  const cut = new Set((state.links?.cut ?? []).map(([a, b]) => `${a}>${b}`));
  for (const [a, b] of lay.links) {
    const pa = byId.get(a), pb = byId.get(b);
    const ab = cut.has(`${a}>${b}`), ba = cut.has(`${b}>${a}`);
    const isSel = selected?.type === "link" && ((selected.a === a && selected.b === b) || (selected.a === b && selected.b === a));
    ctx.strokeStyle = ab && ba ? theme.danger : isSel ? theme.ink : theme.muted;
    ctx.globalAlpha = isSel || ab || ba ? 0.9 : 0.22;
    ctx.lineWidth = isSel ? 3 : 1;
    if (ab && ba) ctx.setLineDash([5, 5]);
    ctx.beginPath(); ctx.moveTo(pa.x, pa.y); ctx.lineTo(pb.x, pb.y); ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    // a cut direction: a red bar across the link, near its sender
    for (const [from, to, isCut] of [[pa, pb, ab], [pb, pa, ba]]) {
      if (!isCut) continue;
      const dx = to.x - from.x, dy = to.y - from.y, len = Math.hypot(dx, dy) || 1;
      const t = Math.min(0.3, 90 / len);
      const mx = from.x + dx * t, my = from.y + dy * t, nx = -dy / len, ny = dx / len;
      ctx.strokeStyle = theme.danger; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(mx - nx * 7, my - ny * 7); ctx.lineTo(mx + nx * 7, my + ny * 7); ctx.stroke();
    }
  }
  ctx.lineWidth = 1;
}

/** Draws one frame. `theme` has ink, muted, bg, card, danger, accent colours; `selected` is what hit() returned, or null. */
export function draw(ctx, w, h, state, theme, selected, now) {
  ctx.clearRect(0, 0, w, h);
  const lay = layout(state, w, h);
  const byId = new Map(lay.hosts.map((p) => [p.id, p]));
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";

  drawLinks(ctx, lay, byId, state, theme, selected);

  // messages in flight: a dot moving toward its receiver (latency is at most ~20 ms)
  for (const m of state.inFlight) {
    const from = byId.get(m.from), to = byId.get(m.to);
    if (!from || !to || from === to) continue;
    const left = Math.max(0, m.deliverAt - now);
    const p = Math.max(0, Math.min(1, 1 - left / 20));
    const x = from.x + (to.x - from.x) * p, y = from.y + (to.y - from.y) * p;
    lay.msgs.push({ id: m.id, x, y });
    if (selected?.type === "msg" && selected.id === m.id) {
      ctx.strokeStyle = theme.accent; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 1;
    }
    if (m.pushes.length) {
      ctx.strokeStyle = groupColor(m.pushes[0].toGroup);
      ctx.lineWidth = 3;
      ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(to.x, to.y); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = groupColor(m.pushes[0].toGroup);
      ctx.fillRect(x - 13, y - 9, 26, 18);
      ctx.fillStyle = "#fff";
      ctx.textAlign = "center";
      ctx.fillText(`s${m.pushes[0].shard}`, x, y);
    } else {
      ctx.fillStyle = m.groups.length ? groupColor(m.groups[0], theme.ink) : theme.muted;
      ctx.globalAlpha = 0.75;
      ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill();
      ctx.globalAlpha = 1;
    }
  }

  // the ongoing moves: an arrow from a leader of the old owner to one of the new
  const leaderHost = new Map(state.groups.map((g) => [g.id, g.leader]));
  for (const s of state.shards) {
    if (s.status !== "moving" || s.from == null) continue;
    const a = byId.get(leaderHost.get(s.from)), b = byId.get(leaderHost.get(s.owner));
    if (!a || !b || a === b) continue;
    ctx.strokeStyle = groupColor(s.owner);
    ctx.globalAlpha = 0.35; ctx.lineWidth = 8;
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
    ctx.globalAlpha = 1; ctx.lineWidth = 1;
  }

  // clients: routed by key to the leader of the group owning the key's shard
  const clientX = 36;
  state.clients.forEach((c, i) => {
    const y = 30 + i * 34;
    const target = c.group != null ? byId.get(leaderHost.get(c.group)) : null;
    if (target && c.pending != null) {
      ctx.strokeStyle = groupColor(c.group); ctx.globalAlpha = 0.45; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(clientX + 12, y); ctx.lineTo(target.x - target.w / 2, target.y); ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = theme.card; ctx.strokeStyle = theme.ink; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.arc(clientX, y, 12, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    ctx.fillStyle = theme.ink; ctx.textAlign = "center"; ctx.fillText(`c${c.id}`, clientX, y);
    ctx.textAlign = "left"; ctx.fillStyle = theme.muted;
    if (c.key != null) ctx.fillText(`${c.key} → s${c.shard} → ${c.group ? c.group : "?"}`, clientX + 16, y + 16);
  });

  // hosts and their replicas
  for (const p of lay.hosts) {
    const host = state.hosts[p.id - 1];
    const [bx, by, bw, bh] = p.box;
    ctx.fillStyle = theme.card;
    ctx.strokeStyle = (selected?.type === "host" && selected.id === p.id) ? theme.accent : host.up ? theme.ink : theme.danger;
    ctx.lineWidth = (selected?.type === "host" && selected.id === p.id) ? 3 : 1.5;
    ctx.globalAlpha = host.up ? 1 : 0.55;
    ctx.beginPath(); ctx.roundRect(bx, by, bw, bh, 7); ctx.fill(); ctx.stroke();
    ctx.fillStyle = host.up ? theme.ink : theme.danger; ctx.textAlign = "left";
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.fillText(`host ${p.id}${host.up ? "" : " · down"}`, bx + 8, by + 11);
    ctx.font = "11px system-ui, sans-serif";
    host.replicas.forEach((r, i) => {
      const y = by + 26 + i * 15;
      const color = groupColor(r.group, theme.ink);
      const lead = r.role === "leader";
      ctx.fillStyle = color; ctx.strokeStyle = color;
      ctx.beginPath(); ctx.roundRect(bx + 8, y - 6, 12, 12, 3);
      if (lead) ctx.fill(); else ctx.stroke();
      ctx.fillStyle = host.up ? theme.ink : theme.muted;
      const label = r.group === 0 ? "ctrl" : `${r.group}`;
      ctx.fillText(r.role === "down" ? `${label} down` : `${label} ${r.hibernating ? "zz" : r.role.slice(0, 4)} t${r.term} c${r.commitIndex}`, bx + 25, y);
    });
    ctx.globalAlpha = 1;
    if (!host.up) {
      ctx.strokeStyle = theme.danger; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(bx + bw - 20, by + 4); ctx.lineTo(bx + bw - 8, by + 16); ctx.moveTo(bx + bw - 8, by + 4); ctx.lineTo(bx + bw - 20, by + 16); ctx.stroke();
    }
  }

  // the shard map
  ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.fillStyle = theme.muted;
  ctx.fillText(`shard map · configuration ${state.config ? state.config.num : "–"}`, lay.shards[0]?.box[0] ?? 20, lay.mapY - 10);
  for (const cell of lay.shards) {
    const s = state.shards[cell.shard];
    const [x, y, cw, chh] = cell.box;
    ctx.fillStyle = s.owner ? groupColor(s.owner) : theme.muted;
    ctx.globalAlpha = s.owner ? 1 : 0.3;
    ctx.fillRect(x, y, cw, chh);
    ctx.globalAlpha = 1;
    if (s.status === "moving" || s.status === "pending") {
      ctx.save(); ctx.beginPath(); ctx.rect(x, y, cw, chh); ctx.clip();
      ctx.strokeStyle = s.from ? groupColor(s.from) : theme.bg; ctx.lineWidth = 2; ctx.globalAlpha = 0.8;
      for (let k = -chh; k < cw; k += 10) { ctx.beginPath(); ctx.moveTo(x + k, y + chh); ctx.lineTo(x + k + chh, y); ctx.stroke(); }
      ctx.restore();
    }
    ctx.strokeStyle = (selected?.type === "shard" && selected.id === cell.shard) ? theme.accent : s.status === "moving" ? theme.danger : theme.bg;
    ctx.lineWidth = (selected?.type === "shard" && selected.id === cell.shard) || s.status === "moving" ? 3 : 1;
    ctx.strokeRect(x, y, cw, chh);
    ctx.fillStyle = "#fff"; ctx.textAlign = "center";
    ctx.font = "bold 11px system-ui, sans-serif";
    ctx.fillText(`s${s.shard}`, x + cw / 2, y + 10);
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText(s.status === "moving" ? `${s.from}→${s.owner}` : s.owner ? `${s.owner}` : "–", x + cw / 2, y + 25);
  }
  return lay;
}
