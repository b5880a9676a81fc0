// The guided tour "A shard moves" of the sharded mode (the step format of
// scenarios.js; planned with sharded/tour-kit.js): a shard moves from one
// group to another while clients write, and a host of the old owner fails
// in the middle of the move.

const name = (g) => `group ${g}`;

export const shardMove = {
  id: "shard-move",
  mode: "sharded",
  title: "A shard moves",
  blurb: "A shard changes group while clients write to it; a host fails mid-move.",
  layout: "lab",
  seed: 7,
  steps: [
    {
      title: "A sharded service",
      plan(ctx, facts) {
        ctx.act("setWorkload", true);
        facts.settled = ctx.waitFor((s) => s.config && s.config.num >= 1 && s.shards.every((x) => x.status === "serving"));
        ctx.runFor(400);
        const s = ctx.state();
        facts.config = s.config.num;
        facts.shard = ctx.shardOf("k0");
        facts.from = s.shards[facts.shard].owner;
        facts.to = s.groups.find((g) => g.id !== 0 && g.id !== facts.from).id;
        facts.fromHosts = s.groups.find((g) => g.id === facts.from).hosts.join(", ");
      },
      text: (f) => `<p>Twelve hosts: the <b>controller</b> group (hosts 1–3) keeps the configuration, which group owns each of the 10 shards; three replica groups of three hosts each serve the keys. Each group is a Raft group of its own, with its own leader, term and log.</p>
        <p>A key belongs to shard <code>hash(key) mod 10</code>. Three clients send puts, appends and gets; each asks the controller for the configuration and sends every request to the leader of the group owning the key's shard. Key <code>k0</code> is in shard ${f.shard}, owned by ${name(f.from)} (hosts ${f.fromHosts}).</p>`,
      watch: () => `The shard map at the bottom, and the lines from each client to the group it is routed to.`,
      expect: (f, end) => [
        [`every shard is served in configuration ${f.config}`, f.settled && end.state.shards.every((s) => s.status === "serving")],
        [`shard ${f.shard} belongs to ${name(f.from)}`, end.shard(f.shard).owner === f.from],
        ["client operations completed", end.history().filter((o) => o.status === "ok").length >= 10],
      ],
    },
    {
      title: "The controller moves a shard",
      plan(ctx, facts) {
        facts.movedAt = ctx.now();
        ctx.act("move", facts.shard, facts.to);
        facts.moving = ctx.waitFor((s) => s.shards[facts.shard].owner === facts.to && s.shards[facts.shard].status === "moving", 5000, 2);
        const s = ctx.state();
        facts.moveConfig = s.config.num;
        facts.pulling = s.groups.find((g) => g.id === facts.to).shards.some((h) => h.shard === facts.shard && h.status === "pulling");
      },
      text: (f) => `<p>An operator asks the controller to give shard ${f.shard} to ${name(f.to)}. The controller commits configuration ${f.moveConfig} in its own log. The groups poll for it: each leader proposes the new configuration in its group's log, so every replica switches at the same point of its history.</p>
        <p>From that entry on, ${name(f.from)} refuses requests for shard ${f.shard} (it now <i>sends</i> it) and ${name(f.to)} does not serve it yet (it <i>pulls</i> it): for a moment nobody serves the shard, and its clients wait and retry. No write can land on the old owner after it agreed to give the shard away.</p>`,
      watch: (f) => `Shard ${f.shard} striped on the map: moving from ${f.from} to ${f.to}.`,
      expect: (f, end) => [
        [`configuration ${f.moveConfig} gives shard ${f.shard} to ${name(f.to)}`, end.state.config.num === f.moveConfig && end.shard(f.shard).owner === f.to],
        [`shard ${f.shard} is moving`, f.moving && end.shard(f.shard).status === "moving"],
      ],
    },
    {
      title: "A host fails mid-move",
      plan(ctx, facts) {
        const s = ctx.state();
        facts.victim = s.groups.find((g) => g.id === facts.from).leader;
        ctx.act("crash", facts.victim);
        facts.crashedAt = ctx.now();
        ctx.runFor(30);
      },
      text: (f) => `<p>Host ${f.victim}, the leader of ${name(f.from)}, crashes while shard ${f.shard} is on its way. Every replica it holds stops with it. The shard's data and its clients' sessions were already written in ${name(f.from)}'s log on a majority of its hosts, so nothing is lost: the survivors elect a new leader, which pushes the shard again.</p>`,
      watch: (f) => `Host ${f.victim} crossed out; a new leader in ${name(f.from)}.`,
      expect: (f, end) => [
        [`host ${f.victim} is down`, !end.host(f.victim).up && end.host(f.victim).replicas.every((r) => r.role === "down")],
        [`shard ${f.shard} has not arrived yet`, end.shard(f.shard).status !== "serving"],
      ],
    },
    {
      title: "The shard arrives",
      plan(ctx, facts) {
        facts.arrived = ctx.waitFor((s) => s.shards[facts.shard].status === "serving", 15_000, 5);
        facts.arrivedAt = ctx.now();
        const s = ctx.state();
        facts.newLeader = s.groups.find((g) => g.id === facts.from).leader;
        facts.writesDuring = ctx.history().filter((o) => o.status === "ok" && o.kind !== "get" && o.completedAt > facts.movedAt && o.completedAt < facts.arrivedAt).length;
        ctx.runFor(600);
      },
      text: (f) => `<p>${name(f.from)} elected host ${f.newLeader}, which sent shard ${f.shard} — its keys and its clients' sessions — to ${name(f.to)}. ${name(f.to)} wrote it in its own log, serves it from then on, and acknowledged, so ${name(f.from)} deleted its copy.</p>
        <p>All along, the clients kept writing: only shard ${f.shard}'s keys waited, the other shards' writes went on (${f.writesDuring} of them completed while the shard was on its way).</p>
        <p>The moved sessions are what keep a retried <code>append</code> exactly-once across the move: a request the old owner applied and the new owner receives again is recognised and not applied twice.</p>`,
      watch: (f) => `Shard ${f.shard} in the colour of ${name(f.to)}; its clients' lines now go to ${name(f.to)}'s leader.`,
      expect: (f, end) => [
        [`shard ${f.shard} is served by ${name(f.to)}`, f.arrived && end.shard(f.shard).owner === f.to && end.shard(f.shard).status === "serving"],
        [`${name(f.from)} has a new leader`, f.newLeader != null && f.newLeader !== f.victim],
        [`clients kept writing while shard ${f.shard} moved (${f.writesDuring} writes completed)`, f.writesDuring > 0 && end.history().filter((o) => o.status === "ok" && o.kind !== "get" && o.completedAt > f.movedAt && o.completedAt < f.arrivedAt).length === f.writesDuring],
        [`the host failed mid-move: after the move began, before the shard arrived`, f.crashedAt > f.movedAt && f.crashedAt < f.arrivedAt],
        [`writes to shard ${f.shard} continue after the move`, end.history().some((o) => o.shard === f.shard && o.status === "ok" && o.invokedAt >= f.arrivedAt && o.kind !== "get")],
      ],
    },
    {
      title: "Checked",
      plan(ctx, facts) {
        ctx.act("restart", facts.victim);
        ctx.runFor(800);
      },
      text: (f) => `<p>Host ${f.victim} restarts from its disk and catches up in every group it holds. The correctness panel checks each group's Raft safety after every event, and the whole history for <b>linearizability</b>, per key across the move: every operation looks as if it happened at one instant between its call and its answer, whichever group served it.</p>`,
      watch: () => `The correctness panel: one line per group, and linearizability.`,
      expect: (f, end) => [
        [`host ${f.victim} is back`, end.host(f.victim).up],
        ["every group is safe and the history is linearizable", end.check().ok && end.check().linearizability.decided],
      ],
    },
  ],
};
