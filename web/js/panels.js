// The side panel cards: inspector (node, message, link, client), clients,
// network, correctness and the event log. Each card builds its DOM once and
// then only rewrites text that changed (setText / setHTML compare first).

import { $, el, esc, setText, setHTML, toggle, fmtTime } from "./dom.js";
import { ROLE_LABEL } from "./theme.js";
import { opLabel, commandLabel, sessionText } from "./history-view.js";
import { clientKey } from "./cluster-view.js";

const roleChip = (app, nd) => {
  const role = nd.up ? nd.role : "down";
  return `<span class="role-chip" style="background:${app.theme.roleColor(nd.role, nd.up)}">${esc(ROLE_LABEL[role] ?? role)}</span>`;
};

export class Inspector {
  constructor(app) {
    this.app = app;
    this.root = $("#inspector");
    this.key = null;
    this.lastMessage = null;
    this.root.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-act]");
      if (!b || b.disabled) return;
      this.onAction(b.dataset.act, b.dataset);
    });
  }

  onAction(act, data) {
    const app = this.app;
    const sel = app.selected;
    switch (act) {
      case "crash": app.act("crash", sel.id); break;
      case "restart": app.act("restart", sel.id); break;
      case "election": app.act("triggerElection", sel.id); break;
      case "transfer": app.act("transferLeadership", sel.id); break;
      case "snapshot": app.act("snapshot", sel.id); break;
      case "learner": app.act("addLearner", sel.id); break;
      case "promote": app.act("promote", sel.id); break;
      case "remove": app.act("removeMember", sel.id); break;
      case "drop": if (app.act("dropMessage", sel.id) === false) app.toast("That message was already delivered."); break;
      case "cut": app.act("cutLink", Number(data.from), Number(data.to)); break;
      case "restore": app.act("restoreLink", Number(data.from), Number(data.to)); break;
      case "cut-both": app.act("cutLink", sel.a, sel.b); app.act("cutLink", sel.b, sel.a); break;
      case "restore-both": app.act("restoreLink", sel.a, sel.b); app.act("restoreLink", sel.b, sel.a); break;
      case "close": app.select(null); break;
    }
  }

  update(force = false) {
    const app = this.app;
    const sel = app.selected;
    const key = sel ? `${sel.type}:${sel.id ?? sel.key ?? `${sel.a}-${sel.b}`}` : "none";
    if (key !== this.key || force) { this.key = key; this.build(sel); }
    const st = app.state;
    if (!sel || !st) return;
    if (sel.type === "node") this.fillNode(st, sel.id);
    else if (sel.type === "msg") this.fillMessage(sel.id);
    else if (sel.type === "link") this.fillLink(st, sel);
    else if (sel.type === "client") this.fillClient(sel.key);
  }

  build(sel) {
    const r = this.root;
    r.replaceChildren();
    r.__html = r.__text = undefined;
    const closeBtn = () => el("button", { class: "btn ghost small", "data-act": "close", title: "Deselect (Esc)", "aria-label": "Close", style: "margin-left:auto" }, "✕");
    if (!sel) {
      r.append(el("h2", { text: "Inspector" }), el("p", { class: "muted small" }, "Click a node, a message or a link on the canvas. Keys 1–9 select a node; the first log rows are clickable too."));
      return;
    }
    if (sel.type === "node") {
      r.append(
        el("div", { class: "insp-head" }, el("h2", { text: `Node ${sel.id}` }), el("span", { id: "i-role" }), closeBtn()),
        el("div", { class: "insp-actions" },
          el("button", { class: "btn small danger", "data-act": "crash", title: "Crash this node (c)" }, "Crash"),
          el("button", { class: "btn small", "data-act": "restart", title: "Restart from its disk (r)" }, "Restart"),
          el("button", { class: "btn small", "data-act": "election", title: "Fire its election timer now (e)" }, "Election timeout"),
          el("button", { class: "btn small", "data-act": "transfer", title: "Ask the leader to hand leadership to this node (t)" }, "Make leader"),
          el("button", { class: "btn small", "data-act": "snapshot", title: "Snapshot and compact its log now (s)" }, "Snapshot"),
        ),
        el("div", { class: "insp-actions", id: "i-member-actions" },
          el("button", { class: "btn small", "data-act": "learner", title: "Ask the leader to add this node as a learner: it receives the log but does not vote" }, "Add as learner"),
          el("button", { class: "btn small", "data-act": "promote", title: "Ask the leader to make this learner a voter (one membership change at a time)" }, "Promote to voter"),
          el("button", { class: "btn small danger", "data-act": "remove", title: "Ask the leader to remove this node from the cluster" }, "Remove from cluster"),
        ),
        el("p", { class: "small muted", id: "i-note" }),
        el("dl", { class: "kv", id: "i-fields" }),
        el("div", { id: "i-progress" }),
        el("div", { class: "sub-h", id: "i-kv-h" }, "Key-value store"),
        el("div", { id: "i-kv" }),
        el("div", { class: "sub-h" }, "Last log entries"),
        el("div", { id: "i-log" }),
      );
    } else if (sel.type === "msg") {
      r.append(
        el("div", { class: "insp-head" }, el("h2", { id: "i-title", text: "Message" }), closeBtn()),
        el("div", { class: "insp-actions" }, el("button", { class: "btn small danger", "data-act": "drop", id: "i-drop", title: "Lose this message in the network" }, "Drop this message")),
        el("p", { class: "small muted", id: "i-msg-state" }),
        el("dl", { class: "kv", id: "i-fields" }),
      );
    } else if (sel.type === "link") {
      r.append(
        el("div", { class: "insp-head" }, el("h2", { text: `Link ${sel.a} ↔ ${sel.b}` }), closeBtn()),
        el("p", { class: "small muted" }, "Each direction can be cut on its own: a one-way cut lets messages through one way only."),
        el("div", { id: "i-link" }),
      );
    } else if (sel.type === "client") {
      r.append(
        el("div", { class: "insp-head" }, el("h2", { text: `Client ${sel.key}` }), closeBtn()),
        el("dl", { class: "kv", id: "i-fields" }),
        el("div", { class: "sub-h" }, "Recent operations"),
        el("div", { id: "i-ops" }),
      );
    }
  }

  fillNode(st, id) {
    const app = this.app;
    const nd = st.nodes.find((n) => n.id === id);
    if (!nd) return;
    setHTML($("#i-role", this.root), roleChip(app, nd));
    const leaderExists = st.leader != null;
    const b = (a) => $(`button[data-act="${a}"]`, this.root);
    b("crash").disabled = !nd.up;
    b("restart").disabled = nd.up;
    b("election").disabled = !nd.up || nd.role === "leader";
    b("transfer").disabled = !nd.up || nd.role === "leader" || !leaderExists;
    b("snapshot").disabled = !nd.up;
    const m = st.membership ?? { voters: [], learners: [] };
    const voter = m.voters.includes(id), learner = m.learners.includes(id);
    b("learner").disabled = voter || learner || !leaderExists;
    b("promote").disabled = !learner || !leaderExists;
    b("remove").disabled = !(voter || learner) || !leaderExists || (voter && m.voters.length === 1);
    const timer = nd.up && nd.electionDeadline != null ? `${Math.max(0, nd.electionDeadline - app.timeline.display).toFixed(0)} ms left` : nd.role === "leader" ? "none (leader)" : "–";
    const rows = [
      ["member", voter ? "voter" : learner ? "learner (receives the log, does not vote)" : "not a member"],
      ["term", nd.term], ["voted for", nd.votedFor ?? "nobody"], ["knows leader", nd.leader ?? "none"],
      ["commit / applied", `${nd.commitIndex} / ${nd.appliedIndex}`], ["last / durable", `${nd.lastIndex ?? "–"} / ${nd.durableIndex ?? "–"}`],
      ["snapshot up to", nd.snapshotIndex ?? 0], ["election timer", timer],
    ];
    if (app.timeline.config.followerReads) rows.push(["follower reads served", nd.up ? `${nd.followerReadsServed ?? 0} since it started` : "–"]);
    setHTML($("#i-fields", this.root), rows.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join(""));
    const note = $("#i-note", this.root);
    setText(note, nd.up ? "" : `Down. Shown is what its disk holds (term, vote, log, snapshot), as the node that a restart brings back: a ${ROLE_LABEL[nd.role] ?? nd.role} whose commit index is its snapshot's (${nd.snapshotIndex ?? 0}); it learns the rest from the leader.`);
    note.hidden = nd.up;
    let prog = "";
    if (nd.progress && nd.progress.length) {
      prog = `<div class="sub-h">Its view of the followers</div><table class="mini"><tr><th>node</th><th>match</th><th>next</th><th>state</th><th>in flight</th></tr>` +
        nd.progress.map((p) => `<tr><td>${p.id}</td><td>${p.matchIndex}</td><td>${p.nextIndex}</td><td class="state-${esc(p.state)}">${esc(p.state)}</td><td>${p.inflight ?? 0}</td></tr>`).join("") + "</table>";
    }
    setHTML($("#i-progress", this.root), prog);
    const keys = Object.keys(nd.kv || {}).sort();
    setText($("#i-kv-h", this.root), `Key-value store (${keys.length} key${keys.length === 1 ? "" : "s"}, applied up to ${nd.appliedIndex})`);
    setHTML($("#i-kv", this.root), keys.length
      ? `<table class="mini"><tr><th>key</th><th>value</th></tr>${keys.slice(0, 60).map((k) => `<tr><td>${esc(k)}</td><td>${esc(nd.kv[k])}</td></tr>`).join("")}</table>${keys.length > 60 ? `<p class="insp-empty">and ${keys.length - 60} more</p>` : ""}`
      : `<p class="insp-empty">empty</p>`);
    const tail = nd.log.slice(-8).reverse();
    setHTML($("#i-log", this.root), tail.length
      ? `<table class="mini"><tr><th>index</th><th>term</th><th>command</th><th></th></tr>${tail.map((e) => `<tr><td>${e.index}</td><td>${e.term}</td><td>${esc(commandLabel(e, app.clientsCache))}</td><td>${e.index <= nd.commitIndex ? "✓" : ""}</td></tr>`).join("")}</table>`
      : `<p class="insp-empty">no entries after the snapshot</p>`);
  }

  fillMessage(id) {
    const app = this.app;
    const m = app.timeline.sim.message(id);
    const stEl = $("#i-msg-state", this.root);
    if (m) this.lastMessage = { id, m };
    const shown = m ?? (this.lastMessage?.id === id ? this.lastMessage.m : null);
    $("#i-drop", this.root).disabled = !m;
    setText(stEl, m ? `In flight: ${m.sentAt != null ? `sent at ${fmtTime(m.sentAt)}, ` : ""}arrives at ${fmtTime(m.deliverAt)}.` : "No longer in flight (delivered or dropped).");
    if (!shown) { setHTML($("#i-fields", this.root), ""); return; }
    setText($("#i-title", this.root), `${shown.kind} ${fmtEnd(shown.from)} → ${fmtEnd(shown.to)}`);
    const skip = new Set(["kind", "messages"]);
    const row = (k, v) => `<dt>${esc(k)}</dt><dd>${esc(sessionText(fmtValue(v), app.clientsCache))}</dd>`;
    const rows = Object.entries(shown).filter(([k]) => !skip.has(k)).map(([k, v]) => row(k, v));
    // a sharded host's batch: each message it carries, with its group, then its own fields
    for (const [i, part] of (shown.messages ?? []).entries()) {
      rows.push(`<dt class="sub-h" data-part="${i}">${esc(part.kind)}${part.group != null ? ` · ${part.group === 0 ? "controller" : `group ${part.group}`}` : ""}</dt><dd></dd>`);
      rows.push(...Object.entries(part).filter(([k]) => k !== "kind" && k !== "group").map(([k, v]) => row(k, v)));
    }
    setHTML($("#i-fields", this.root), rows.join(""));
  }

  fillLink(st, sel) {
    const cut = new Set((st.links?.cut || []).map(([a, b]) => `${a}>${b}`));
    const part = st.links?.partition;
    const split = part && part.findIndex((g) => g.includes(sel.a)) !== part.findIndex((g) => g.includes(sel.b));
    const dir = (a, b) => {
      const isCut = cut.has(`${a}>${b}`);
      return `<div class="row"><span style="flex:1">${a} → ${b}: <b style="color:${isCut ? "var(--danger)" : "var(--ok)"}">${isCut ? "cut" : "open"}</b></span>
        <button class="btn small" data-act="${isCut ? "restore" : "cut"}" data-from="${a}" data-to="${b}">${isCut ? "Restore" : "Cut"} ${a} → ${b}</button></div>`;
    };
    setHTML($("#i-link", this.root), dir(sel.a, sel.b) + dir(sel.b, sel.a) +
      `<div class="row"><button class="btn small" data-act="cut-both">Cut both ways</button><button class="btn small" data-act="restore-both">Restore both</button></div>` +
      (split ? `<p class="small" style="color:var(--danger)">The two nodes are also in different partition groups: nothing passes until the partition heals.</p>` : ""));
  }

  fillClient(key) {
    const app = this.app;
    const c = app.clientsCache.find((x) => clientKey(x.id) === key);
    const rows = c ? [["busy", c.busy ? "yes" : "no"], ["leader guess", c.leaderGuess ?? "none"], ["requests sent", c.seq]] : [["state", "unknown"]];
    setHTML($("#i-fields", this.root), rows.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join(""));
    const ops = app.historyCache.filter((o) => clientKey(o.client) === key).slice(-8).reverse();
    setHTML($("#i-ops", this.root), ops.length
      ? `<table class="mini"><tr><th>op</th><th>what</th><th>status</th></tr>${ops.map((o) => `<tr><td>${o.id}</td><td>${esc(opLabel(o))}</td><td>${esc(o.status)}</td></tr>`).join("")}</table>`
      : `<p class="insp-empty">none yet</p>`);
  }
}

function fmtEnd(x) { return typeof x === "string" ? x : String(x); }
function fmtValue(v) {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) {
    if (!v.length) return "[]";
    if (typeof v[0] === "object" && v[0] && "index" in v[0]) return v.map((e) => `${e.index}:t${e.term}${e.command ? ` ${e.command}` : ""}`).join(", ");
    return JSON.stringify(v);
  }
  if (typeof v === "object") { const s = JSON.stringify(v); return s.length > 300 ? s.slice(0, 300) + "…" : s; }
  return String(v);
}

/** The clients card: the op form, the workload switch and the list of clients. */
export class ClientsCard {
  constructor(app) {
    this.app = app;
    this.form = $("#op-form");
    this.kind = $("#op-kind");
    this.key = $("#op-key");
    this.value = $("#op-value");
    this.client = $("#op-client");
    this.list = $("#client-list");
    this.count = -1;
    const syncValue = () => { const needs = this.kind.value === "put" || this.kind.value === "append"; this.value.disabled = !needs; };
    this.kind.addEventListener("change", syncValue);
    syncValue();
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      const kind = this.kind.value, key = this.key.value.trim(), value = this.value.value;
      if (!key) { app.toast("A key is needed.", { error: true }); return; }
      const client = this.client.value ? Number(this.client.value) : undefined;
      const args = kind === "put" || kind === "append" ? [key, value] : [key];
      if (client !== undefined) args.push(client);
      const id = app.act(kind, ...args);
      if (id !== undefined) {
        app.toast(`${kind} ${key}${args.length > 1 && typeof args[1] === "string" ? `=${value}` : ""} sent (op ${id})`);
        if (kind === "put" || kind === "append") { const n = Number(value); if (Number.isFinite(n) && String(n) === value) this.value.value = String(n + 1); }
      }
    });
    const wl = () => ({
      clients: $("#wl-on").checked ? Math.max(1, Number($("#wl-clients").value) || 1) : 0,
      intervalMs: Math.max(1, Number($("#wl-interval").value) || 100),
      keys: 5,
      readFraction: Math.min(1, Math.max(0, Number($("#wl-reads").value) || 0)),
    });
    $("#wl-on").addEventListener("change", () => app.act("setWorkload", wl()));
    for (const id of ["#wl-clients", "#wl-interval", "#wl-reads"]) $(id).addEventListener("change", () => { if ($("#wl-on").checked) app.act("setWorkload", wl()); });
  }

  focus() { this.key.focus(); this.key.select(); }

  toggleWorkload() { const cb = $("#wl-on"); cb.checked = !cb.checked; cb.dispatchEvent(new Event("change")); }

  update() {
    const clients = this.app.clientsCache;
    if (clients.length !== this.count) {
      this.count = clients.length;
      const cur = this.client.value;
      this.client.replaceChildren(el("option", { value: "" }, "any idle client"), ...clients.map((c) => el("option", { value: String(c.id) }, `client c${c.id}`)));
      this.client.value = [...this.client.options].some((o) => o.value === cur) ? cur : "";
    }
    const html = clients.slice(0, 24).map((c) => `<li class="${c.busy ? "busy" : ""}" title="leader guess: ${c.leaderGuess ?? "none"}">c${c.id} ${c.busy ? "busy" : "idle"}${c.leaderGuess != null ? ` → ${c.leaderGuess}` : ""}</li>`).join("");
    setHTML(this.list, html);
    const w = this.app.workload();
    const cb = $("#wl-on");
    if (document.activeElement !== cb && cb.checked !== (w.clients > 0)) cb.checked = w.clients > 0;
  }
}

/** The network card: loss, duplicates, latency, the partition editor and the list of cut links. */
export class NetworkCard {
  constructor(app) {
    this.app = app;
    this.draft = null; // Map node -> group while the person edits a partition
    const drop = $("#drop"), dup = $("#dup");
    drop.addEventListener("input", () => setText($("#drop-out"), pct(drop.value)));
    dup.addEventListener("input", () => setText($("#dup-out"), pct(dup.value)));
    drop.addEventListener("change", () => app.act("setDropRate", Number(drop.value)));
    dup.addEventListener("change", () => app.act("setDuplicateRate", Number(dup.value)));
    $("#lat-apply").addEventListener("click", () => {
      const lo = Number($("#lat-min").value), hi = Number($("#lat-max").value);
      app.act("setLatency", lo, hi);
    });
    $("#part-chips").addEventListener("click", (e) => {
      const c = e.target.closest(".chip");
      if (!c) return;
      this.cycle(Number(c.dataset.id));
    });
    $("#part-apply").addEventListener("click", () => this.apply());
    $("#heal").addEventListener("click", () => { this.draft = null; app.act("heal"); });
    $("#add-node").addEventListener("click", () => {
      const id = app.act("addNode");
      if (id == null) return;
      app.act("addLearner", id);
      app.selectNode(id);
    });
    $("#cut-list").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-from]");
      if (b) app.act("restoreLink", Number(b.dataset.from), Number(b.dataset.to));
    });
  }

  groupsFromState() {
    const st = this.app.state;
    const m = new Map();
    if (!st) return m;
    const part = st.links?.partition;
    for (const nd of st.nodes) m.set(nd.id, 0);
    if (part) part.forEach((g, gi) => g.forEach((id) => m.set(Number(id), gi)));
    return m;
  }

  cycle(id) {
    if (!this.draft) this.draft = this.groupsFromState();
    this.draft.set(id, ((this.draft.get(id) ?? 0) + 1) % 3);
    this.app.dirty = true;
  }

  preview() {
    if (!this.draft) return null;
    const gs = [[], [], []];
    for (const [id, g] of this.draft) gs[g].push(id);
    return gs.filter((g) => g.length);
  }

  apply() {
    const gs = this.preview() ?? [];
    this.draft = null;
    if (gs.length <= 1) this.app.act("heal");
    else this.app.act("partition", gs);
  }

  update() {
    const app = this.app;
    const st = app.state;
    if (!st) return;
    const groups = this.draft ?? this.groupsFromState();
    const letters = ["A", "B", "C"];
    setHTML($("#part-chips"), st.nodes.map((nd) => { const g = groups.get(nd.id) ?? 0; return `<button class="chip g${g}" data-id="${nd.id}" title="Node ${nd.id}: group ${letters[g]} (click to change)">${nd.id}<b>${letters[g]}</b></button>`; }).join(""));
    $("#part-apply").textContent = this.draft ? "Apply partition" : "Apply partition";
    toggle($("#part-apply"), "primary", !!this.draft);
    const m = st.membership;
    if (m) {
      const learners = m.learners.length ? ` · learners ${m.learners.join(" ")}` : "";
      const outside = st.nodes.filter((nd) => !m.voters.includes(nd.id) && !m.learners.includes(nd.id)).map((nd) => nd.id);
      setText($("#members-text"), `voters ${m.voters.join(" ")}${learners}${outside.length ? ` · not members ${outside.join(" ")}` : ""}`);
    }
    $("#add-node").disabled = !m || st.nodes.length >= 9;
    const cuts = st.links?.cut || [];
    setHTML($("#cut-list"), cuts.map(([a, b]) => `<li>link ${a} → ${b} is cut <button class="btn small" data-from="${a}" data-to="${b}">restore</button></li>`).join(""));
    const net = app.network();
    const drop = $("#drop"), dup = $("#dup");
    if (document.activeElement !== drop && Number(drop.value) !== net.dropRate) { drop.value = net.dropRate; setText($("#drop-out"), pct(net.dropRate)); }
    if (document.activeElement !== dup && Number(dup.value) !== net.duplicateRate) { dup.value = net.duplicateRate; setText($("#dup-out"), pct(net.duplicateRate)); }
    const lo = $("#lat-min"), hi = $("#lat-max");
    if (document.activeElement !== lo && document.activeElement !== hi && document.activeElement !== $("#lat-apply")) {
      if (Number(lo.value) !== net.latencyMs[0]) lo.value = net.latencyMs[0];
      if (Number(hi.value) !== net.latencyMs[1]) hi.value = net.latencyMs[1];
    }
  }
}

const pct = (p) => `${Math.round(Number(p) * 100)}%`;

/** The correctness card. */
export class CheckCard {
  constructor(app) { this.app = app; }
  update(res) {
    const pill = $("#check-pill");
    if (!res) { setText(pill, "…"); return; }
    setText(pill, res.ok ? "OK" : "VIOLATION");
    toggle(pill, "ok", res.ok);
    toggle(pill, "bad", !res.ok);
    const lin = res.linearizability;
    const linText = !lin ? "ok" : lin.decided === false ? `undecided (the search gave up: ${String(lin.text).replace(/^undecided: /, "")})` : String(lin.text || "ok").replace(/^linearizable: /, "");
    const text = res.ok
      ? `Election Safety, Log Matching, Leader Completeness, State Machine Safety and Leader Append-Only hold after every event. Linearizable: ${linText}.`
      : `${res.violations.length} problem${res.violations.length === 1 ? "" : "s"} found${lin && !lin.ok && lin.ops?.length ? `; the operations involved are outlined in red in the History` : ""}.`;
    setText($("#check-text"), text);
    setHTML($("#check-list"), (res.violations || []).slice(0, 8).map((v) => `<li>${esc(v)}</li>`).join(""));
  }
}

/** The event log: appends new trace lines, keeps the newest 100; does nothing while scrolled out of view. */
export class EventLog {
  constructor(app) {
    this.app = app;
    this.list = $("#event-log");
    this.seq = 0;
    this.sim = null;
    this.visible = true;
    this.hide = new Set(["Heartbeat", "HeartbeatResponse"]);
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => { for (const e of entries) this.visible = e.isIntersecting; }).observe($("#events-card"));
    }
  }
  update() {
    const sim = this.app.timeline.sim;
    if (sim !== this.sim) { this.sim = sim; this.seq = 0; this.list.replaceChildren(); }
    if (!this.visible || document.hidden) return;
    // fast-forward: the lines fly by too fast to read; read them twice a second
    const now = performance.now();
    if (this.app.playback.playing && this.app.playback.speed > 20 && now - (this.readAt ?? 0) < 500) return;
    this.readAt = now;
    let evs = sim.events(this.seq);
    if (!evs.length) return;
    this.seq = evs[evs.length - 1].seq;
    evs = evs.filter((e) => !this.hide.has(e.kind)).slice(-40);
    const frag = document.createDocumentFragment();
    for (const e of evs) {
      const li = document.createElement("li");
      li.innerHTML = `<span class="t">${(e.at / 1000).toFixed(3)}</span><span class="n">${e.node === null || e.node === undefined ? "·" : esc(e.node)}</span><span>${esc(sessionText(e.text, this.app.clientsCache))}</span>`;
      frag.prepend(li);
    }
    this.list.prepend(frag);
    let extra = this.list.childElementCount - 100;
    while (extra-- > 0) this.list.lastElementChild.remove();
  }
}
