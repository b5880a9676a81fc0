// The logs side by side, one row per node, aligned by index: each entry
// coloured by its term, committed entries filled, the compacted prefix
// hatched, the commit index marked, entries not yet on disk dotted, and at
// the right the leader's view of each follower (match and next index, probe /
// replicate / snapshot). Drawn by cluster-view.js into its layout `g`; the
// grid's geometry (`g.gridRows`, `g.cellW`) serves its hit tests.

const TAU = Math.PI * 2;

const LEGEND = ["number = term", "filled = committed", "dashed = not yet committed", "corner dot = not yet on disk", "▲ commit index", "hatched = snapshot", "green bar / ▸ = the leader's match / next index"];

/** Draw the grid for state `st` (a node selected or hovered gets its row highlighted). */
export function drawLogGrid(ctx, theme, g, st, maxCols, sel, hov) {
  const columns = gridWindow(g, st, maxCols);
  const leader = st.nodes.find((node) => node.id === st.leader) ?? null; // the cluster's leader, as the simulator sees it
  const progress = new Map((leader?.progress || []).map((p) => [Number(p.id), p]));
  drawIndexRuler(ctx, theme, g, columns);
  st.nodes.forEach((node, k) => {
    const row = { ...columns, y: g.gridTop + k * g.rowH, cy: g.gridTop + k * g.rowH + g.rowH / 2, cellH: g.rowH - 6 };
    const highlighted = [sel, hov].some((s) => s?.type === "node" && s.id === node.id);
    drawRowLabel(ctx, theme, g, row, node, highlighted);
    ctx.globalAlpha = node.up ? 1 : 0.45;
    drawSnapshotPrefix(ctx, theme, row, node);
    drawEntries(ctx, theme, row, node);
    drawMarkers(ctx, theme, row, node);
    ctx.globalAlpha = 1;
    drawLeaderView(ctx, theme, row, node, leader, progress.get(node.id));
  });
  g.gridRows = { top: g.gridTop, rowH: g.rowH, x0: columns.x0, cols: columns.cols, first: columns.first };
  drawLegend(ctx, theme, g, g.gridTop + st.nodes.length * g.rowH + 12);
}

/** Which indexes the grid shows (the newest ones) and how wide a cell is. */
function gridWindow(g, st, maxCols) {
  let last = 0;
  for (const node of st.nodes) last = Math.max(last, node.lastIndex ?? (node.log.length ? node.log[node.log.length - 1].index : 0));
  const cellW = Math.max(g.cellMin, Math.min(g.cellMax, g.cellArea / Math.max(10, last + 2)));
  g.cellW = cellW;
  const cols = Math.min(maxCols, Math.max(5, Math.floor(g.cellArea / cellW)));
  const first = Math.max(1, last - cols + 1);
  g.firstIndex = first;
  return { cellW, cols, first, lastShown: first + cols - 1, x0: g.grid.x + g.labelW };
}

function drawIndexRuler(ctx, T, g, { cellW, cols, first, x0 }) {
  const top = g.gridTop;
  ctx.textBaseline = "middle";
  ctx.font = `600 11px ${T.font}`; ctx.fillStyle = T.muted; ctx.textAlign = "left";
  ctx.fillText("LOGS", g.grid.x, top - 13);
  ctx.font = `10px ${T.mono}`; ctx.textAlign = "center";
  const every = cellW >= 20 ? 5 : 10;
  for (let i = first; i <= first + cols - 1; i++) {
    if (i % every === 0 || i === first) ctx.fillText(String(i), x0 + (i - first + 0.5) * cellW, top - 8);
  }
}

function drawRowLabel(ctx, T, g, row, node, highlighted) {
  const { grid, rowH } = g;
  const { y, cy, x0 } = row;
  if (highlighted) { ctx.fillStyle = T.surface2; ctx.fillRect(grid.x - 4, y, grid.w + 8, rowH); }
  ctx.beginPath(); ctx.arc(grid.x + 7, cy, 5, 0, TAU); ctx.fillStyle = T.roleColor(node.role, node.up); ctx.fill();
  ctx.textAlign = "left"; ctx.fillStyle = node.up ? T.ink : T.muted; ctx.font = `600 12px ${T.font}`;
  ctx.fillText(`node ${node.id}`, grid.x + 17, cy);
  ctx.font = `11px ${T.mono}`; ctx.fillStyle = T.muted; ctx.textAlign = "right";
  ctx.fillText(`t${node.term}`, x0 - 6, cy);
}

/** The compacted prefix (hatched), or a note when the log ends before the window. */
function drawSnapshotPrefix(ctx, T, row, node) {
  const { cellW, first, lastShown, x0, cy, cellH } = row;
  const snapEnd = Math.min(node.snapshotIndex ?? 0, lastShown);
  if (snapEnd >= first) {
    const sx = x0, sw = (snapEnd - first + 1) * cellW;
    ctx.fillStyle = T.surface2; ctx.fillRect(sx, cy - cellH / 2, sw, cellH);
    ctx.save(); ctx.beginPath(); ctx.rect(sx, cy - cellH / 2, sw, cellH); ctx.clip();
    ctx.strokeStyle = T.lineStrong; ctx.lineWidth = 1;
    for (let hx = sx - cellH; hx < sx + sw; hx += 6) { ctx.beginPath(); ctx.moveTo(hx, cy + cellH / 2); ctx.lineTo(hx + cellH, cy - cellH / 2); ctx.stroke(); }
    ctx.restore();
    if (sw > 52) { ctx.fillStyle = T.muted; ctx.font = `600 10px ${T.font}`; ctx.textAlign = "center"; ctx.fillText(`snapshot ≤ ${node.snapshotIndex}`, sx + sw / 2, cy); }
  }
  const ends = node.lastIndex ?? 0;
  if (ends < first && snapEnd < first) {
    ctx.fillStyle = T.muted; ctx.font = `italic 11px ${T.font}`; ctx.textAlign = "left";
    ctx.fillText(ends === 0 ? "empty log" : `◂ log ends at index ${ends}`, x0 + 4, cy);
  }
}

/** One cell per entry: filled once committed, dashed before; a dot while not yet on disk. */
function drawEntries(ctx, T, row, node) {
  const { cellW, first, lastShown, x0, cy, cellH } = row;
  const durable = node.durableIndex ?? node.lastIndex;
  for (const e of node.log) {
    if (e.index < first) continue;
    if (e.index > lastShown) break;
    const x = x0 + (e.index - first) * cellW;
    const committed = e.index <= node.commitIndex;
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
}

/** The snapshot boundary and the commit index (▲). */
function drawMarkers(ctx, T, row, node) {
  const { cellW, first, lastShown, x0, cy, cellH } = row;
  if ((node.snapshotIndex ?? 0) >= first - 1 && node.snapshotIndex > 0 && node.snapshotIndex <= lastShown) {
    const bx = x0 + (node.snapshotIndex - first + 1) * cellW;
    ctx.fillStyle = T.role.learner;
    ctx.fillRect(bx - 1.5, cy - cellH / 2 - 2, 3, cellH + 4);
  }
  if (node.commitIndex >= first && node.commitIndex <= lastShown) {
    const mx = x0 + (node.commitIndex - first + 0.5) * cellW;
    ctx.fillStyle = T.ink; ctx.beginPath();
    ctx.moveTo(mx, cy + cellH / 2 - 1); ctx.lineTo(mx - 4, cy + cellH / 2 + 4); ctx.lineTo(mx + 4, cy + cellH / 2 + 4); ctx.closePath(); ctx.fill();
  }
}

/** Right of the row: "leader", the leader's view of this follower, or "down". */
function drawLeaderView(ctx, T, row, node, leader, p) {
  const { cellW, cols, first, lastShown, x0, cy, cellH } = row;
  const rx = x0 + cols * cellW + 8;
  ctx.textAlign = "left"; ctx.font = `11px ${T.font}`;
  if (leader && leader.id === node.id) {
    ctx.fillStyle = T.role.leader; ctx.font = `600 11px ${T.font}`; ctx.fillText("leader", rx, cy);
  } else if (p) {
    ctx.fillStyle = p.state === "replicate" ? T.ok : p.state === "probe" ? T.warn : T.role.learner;
    ctx.fillText(`${p.state}${p.inflight ? ` · ${p.inflight}✈` : ""}`, rx, cy - 6);
    ctx.fillStyle = T.muted; ctx.font = `10px ${T.mono}`;
    ctx.fillText(`m${p.matchIndex} n${p.nextIndex}`, rx, cy + 7);
    // match underline and next-index arrow
    const mEnd = Math.min(p.matchIndex, lastShown);
    if (mEnd >= first) {
      ctx.fillStyle = T.role.leader; ctx.globalAlpha = 0.85;
      ctx.fillRect(x0, cy - cellH / 2 - 3, (mEnd - first + 1) * cellW, 2);
      ctx.globalAlpha = 1;
    }
    if (p.nextIndex >= first && p.nextIndex <= lastShown) {
      const nx = x0 + (p.nextIndex - first) * cellW + 1;
      ctx.strokeStyle = T.role.leader; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(nx, cy - cellH / 2 - 6); ctx.lineTo(nx + 5, cy - cellH / 2 - 2); ctx.lineTo(nx, cy - cellH / 2 + 2); ctx.stroke();
    }
  } else if (!node.up) {
    ctx.fillStyle = T.muted; ctx.fillText("down", rx, cy);
  }
}

/** A line (or a few) of legend under the grid, while there is room. */
function drawLegend(ctx, T, g, top) {
  if (top >= g.h - 40) return;
  ctx.font = `10.5px ${T.font}`; ctx.fillStyle = T.muted; ctx.textAlign = "left";
  let line = "", y = top;
  for (const part of LEGEND) {
    const next = line ? `${line} · ${part}` : part;
    if (ctx.measureText(next).width > g.grid.w && line) { if (y < g.h - 40) ctx.fillText(line, g.grid.x, y); y += 14; line = part; } else line = next;
  }
  if (line && y < g.h - 40) ctx.fillText(line, g.grid.x, y);
}
