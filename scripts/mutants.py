#!/usr/bin/env python3
"""Puts known Raft and service bugs into the core, one at a time, and checks
that the tests catch each of them: evidence that the checkers would fail if
the code were broken. Restores every file afterwards. A mutant that does
not build is reported as BROKEN (it proves nothing), one whose code moved as
SKIPPED; both make the script fail. Opt-in (about six minutes):

    scripts/mutants.py            # every mutation
    scripts/mutants.py stale-read # one of them
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "lib"))
from mutation import each_mutant  # noqa: E402
SWEEP = "DISTRIBKV_SEEDS=3000 cargo test -q --release -p distribkv-core --features sim --test sweep seed_sweep"
GOLDEN = "cargo test -q -p distribkv-core --features sim --test scenarios"
RULES = "cargo test -q -p distribkv-core --test raft_rules"
STORE = "cargo test -q -p distribkv-core --lib kv::"
FOLLOWER_READS = "cargo test -q --release -p distribkv-core --features sim --test kv_lab follower"
CONTROLLER = "cargo test -q -p distribkv-core --lib shard::controller"
RETIREMENT = "cargo test -q --release -p distribkv-core --features sim --test shard_lab retire"
SHARD_CLERK = "cargo test -q -p distribkv-core --lib shard::clerk"
SHARD_HOST = "cargo test -q -p distribkv-core --features sim --test shard_host shards::"
SHARD_EXPORT = "cargo test -q -p distribkv-core --features sim --test shard_host export::"
SHARD_GROUP = "cargo test -q -p distribkv-core --lib shard::group"
SHARD_SWEEP = ("DISTRIBKV_SHARD_SEEDS=300 cargo test -q --release -p distribkv-core --features sim "
               "--test shard_sweep -- --nocapture")

# (name, file, text to replace, replacement, test command that must fail)
MUTATIONS = [
    ("follower-read-index-without-a-heartbeat-round (a deposed leader answers)", "core/src/raft/read.rs",
     "            let _ = self.read_index_for(request.id, Some((from, request.nonce)));",
     "            let commit = self.log.commit();\n"
     "            self.deliver_read(request.id, Some((from, request.nonce)), commit);",
     FOLLOWER_READS),
    ("candidate-rushes-ahead-of-a-rival-with-a-longer-log (a stale candidate wins every race)",
     "core/src/raft/election.rs",
     "        let rival_ahead = candidate\n",
     "        let rival_ahead = false && candidate\n",
     RULES),
    ("learner-never-stands-when-a-candidate-behind-it-needs-it (no leader ever: the only electable log is a learner's)",
     "core/src/raft/election.rs",
     "            self.needed_as_voter = true;\n",
     "            self.needed_as_voter = false;\n",
     RULES),
    ("non-voter-leader-without-a-membership-entry-never-steps-down",
     "core/src/raft/membership.rs",
     "                .is_none_or(|index| index <= self.log.commit())\n",
     "                .is_some_and(|index| index <= self.log.commit())\n",
     RULES),
    ("follower-read-takes-an-answer-to-its-previous-run (read ids start again after a restart)",
     "core/src/raft/read.rs",
     "        if response.nonce != self.read_nonce\n",
     "        if false && response.nonce != self.read_nonce\n",
     RULES),
    ("follower-read-served-before-applying-the-read-index", "core/src/raft/read.rs",
     "            Some(index) => Output::ReadReady {\n                id: response.id,\n                index,\n            },",
     "            Some(_) => Output::ReadReady {\n                id: response.id,\n                index: 0,\n            },",
     GOLDEN),
    ("commit-old-terms-by-counting (Figure 8, §5.4.2)", "core/src/raft/replication.rs",
     "if index > self.log.commit() && self.log.term_at(index) == Some(self.term) {",
     "if index > self.log.commit() {", GOLDEN),
    ("vote-without-up-to-date-check (§5.4.1)", "core/src/raft/election.rs",
     "let granted = can_vote && up_to_date;", "let granted = can_vote;", SWEEP),
    ("ack-appends-before-fsync", "core/src/raft/replication.rs",
     "    fn answer_append(&mut self, to: NodeId, index: LogIndex) {\n        self.send_when_durable(",
     "    fn answer_append(&mut self, to: NodeId, index: LogIndex) {\n        self.send(", SWEEP),
    ("stale-read (gets served without ReadIndex)", "core/src/kv/replica/clients.rs",
     "        let read = self.next_read_id;\n",
     "        if self.node.is_leader() {\n"
     "            let value = self.store.get(&key).cloned();\n"
     "            self.reply(from, request, Ok(Reply::Done(value)));\n            return;\n        }\n"
     "        let read = self.next_read_id;\n",
     SWEEP),
    ("no-exactly-once (retried writes applied again)", "core/src/kv/store.rs",
     "            SessionCheck::Duplicate(result) => Applied::Write {\n                client,\n                seq,\n"
     "                result,\n                duplicate: true,\n            },\n            SessionCheck::Fresh => {",
     "            SessionCheck::Duplicate(_) | SessionCheck::Fresh => {",
     SWEEP),
    ("follower-commits-past-the-leader's-entries (§5.3 step 5)", "core/src/raft/replication.rs",
     "self.log.commit_to(leader_commit.min(last_new));", "self.log.commit_to(leader_commit);", RULES),
    ("membership-change-before-the-new-leader-commits (Ongaro's single-server change bug)",
     "core/src/raft/membership.rs",
     "        if pending || !committed_in_term {", "        if pending || (false && !committed_in_term) {",
     GOLDEN),
    ("lease-reads-during-a-transfer (and after its TimeoutNow)", "core/src/raft/read.rs",
     "            && leader.transfer.is_none()\n            && !leader.timeout_now_sent\n",
     "", GOLDEN),
    ("writes-of-expired-sessions-applied", "core/src/kv/store.rs",
     "            SessionCheck::Unknown | SessionCheck::Expired => Applied::Refused {\n                client,\n                seq,\n"
     "                error: ServiceError::SessionExpired,\n            },",
     "            SessionCheck::Unknown | SessionCheck::Expired => {\n                let result = self.write(operation);\n"
     "                Applied::Write {\n                    client,\n                    seq,\n"
     "                    result,\n                    duplicate: false,\n                }\n            }",
     SWEEP),
    ("retried-opening-of-a-dropped-session-applied-again (no tombstones)", "core/src/kv/store.rs",
     "None if let Some(client) = self.sessions.dropped_opening(nonce) => {",
     "None if let Some(client) = self.sessions.dropped_opening(nonce)\n                        && false =>\n                    {",
     STORE),
    ("restarted-voter-grants-votes-inside-a-lease", "core/src/raft/node.rs",
     "            now + config.election_timeout_min\n", "            Instant::ZERO\n", GOLDEN),
    ("no-stickiness-check-for-votes (leader lease ignored)", "core/src/raft/node.rs",
     "Message::RequestVote(m) if !m.transfer && self.in_leader_lease() => {",
     "Message::RequestVote(m) if false && !m.transfer && self.in_leader_lease() => {",
     GOLDEN),
    ("no-term-check-on-append (stale leader accepted)", "core/src/raft/node.rs",
     "        } else if term < self.term {\n            self.stats.stale_term += 1;\n            self.answer_stale(from, &message);\n            return;\n        }",
     "        } else if term < self.term && !matches!(message, Message::AppendEntries(_)) {\n            self.stats.stale_term += 1;\n            self.answer_stale(from, &message);\n            return;\n        }",
     RULES),
    ("removed-node-forgotten-once-its-removal-commits (it never learns it was removed)",
     "core/src/raft/membership.rs",
     "            .retain(|id, _| members.contains(id) || departing.contains_key(id));",
     "            .retain(|id, _| members.contains(id) || (false && departing.contains_key(id)));",
     RULES),
    ("removed-node's-acknowledgements-dropped-by-the-leader (no farewell)", "core/src/raft/node.rs",
     "&& !self.is_farewell_answer(from, &message)",
     "&& !(false && self.is_farewell_answer(from, &message))",
     RULES),
    ("departing-node-counts-toward-the-commit-quorum", "core/src/raft/replication.rs",
     "        let voters = &self.log.membership().voters;\n        let mut inline",
     "        let voters: &Vec<_> = &self\n            .log\n            .membership()\n            .voters\n"
     "            .iter()\n            .chain(leader.departing.keys())\n            .copied()\n            .collect();\n"
     "        let mut inline",
     RULES),
    ("departing-node-keeps-the-leader-in-office (CheckQuorum)", "core/src/raft/election.rs",
     "        let active = voters\n            .iter()\n",
     "        let active = voters\n            .iter()\n            .chain(leader.departing.keys())\n",
     RULES),
    ("departing-node-confirms-reads (ReadIndex)", "core/src/raft/read.rs",
     "        let mut rounds: Vec<u64> = voters\n            .iter()\n",
     "        let mut rounds: Vec<u64> = voters\n            .iter()\n            .chain(leader.departing.keys())\n",
     RULES),
    ("check-quorum-hand-over-dropped (a deposed leader sends no TimeoutNow)", "core/src/raft/transfer.rs",
     "        if let Some(target) = target {",
     "        if let Some(target) = target.filter(|_| false) {",
     RULES),
    ("check-quorum-hand-over-to-a-shorter-log (not the most up-to-date voter)", "core/src/raft/transfer.rs",
     ".max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))",
     ".min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))",
     RULES),
    ("check-quorum-threshold-one-election-timeout (slow links depose the leader)", "core/src/raft/config.rs",
     "        2 * (self.election_timeout_min + self.heartbeat_interval)\n",
     "        self.election_timeout_min\n",
     RULES),
    ("check-quorum-threshold-too-long (a deaf leader lingers)", "core/src/raft/config.rs",
     "        2 * (self.election_timeout_min + self.heartbeat_interval)\n",
     "        3 * (self.election_timeout_min + self.heartbeat_interval)\n",
     RULES),
    ("check-quorum-never-renewed (a leader hearing its majority steps down anyway)", "core/src/raft/node.rs",
     "                        leader.quorum_heard_at = now;\n",
     "                        leader.quorum_heard_at = leader.quorum_heard_at.min(now);\n",
     RULES),
    ("split-candidates-wait-a-full-election-timeout (no shorter re-arm on hearing a rival)", "core/src/raft/election.rs",
     "        if split || stale_transfer {",
     "        if stale_transfer {",
     RULES),
    ("stale-transfer-candidate-refused-without-a-shorter-re-arm", "core/src/raft/election.rs",
     "        if split || stale_transfer {",
     "        if split {",
     RULES),
    ("uncommitted-removal-stops-campaigning (§4.2.2: the longest log never stands)", "core/src/raft/inspect.rs",
     "self.is_voter() || (!self.is_removed() && self.log.is_voter_since_commit(self.id))",
     "self.is_voter()",
     RULES),
    ("clerk-follows-hints-to-a-server-that-just-went-silent", "core/src/kv/clerk.rs",
     "                let suspect = suspect_hint;",
     "                let suspect = suspect_hint && false;",
     STORE),
    ("clerk-picks-silent-servers-again", "core/src/kv/clerk/pick.rs",
     "            at != from && !clerk.is_suspect(now, clerk.config.servers[at])",
     "            at != from",
     STORE),
    ("clerk-gives-a-guess-the-whole-attempt-timeout (no probe timeout)", "core/src/kv/clerk.rs",
     "            self.config.probe_timeout.min(self.config.attempt_timeout)",
     "            self.config.attempt_timeout",
     STORE),
    ("shard-clerk-follows-hints-to-a-server-that-just-went-silent", "core/src/shard/clerk.rs",
     "            }) => self.is_suspect(now, *hint),",
     "            }) => self.is_suspect(now, *hint) && false,",
     SHARD_CLERK),
    ("shard-clerk-picks-silent-servers-again", "core/src/shard/clerk/pick.rs",
     "            .find(|step| !self.is_suspect(now, servers[from.wrapping_add(*step) % n]))",
     "            .find(|step| *step == 1 || !self.is_suspect(now, servers[from.wrapping_add(*step) % n]))",
     SHARD_CLERK),
    ("shard-clerk-gives-a-guess-the-whole-retry (no probe timeout)", "core/src/shard/clerk/pick.rs",
     "            self.config.probe_ms.min(self.config.retry_ms)",
     "            self.config.retry_ms",
     SHARD_CLERK),
    ("shard-clerk-drops-late-successes (a slow leader's answer thrown away)", "core/src/shard/clerk.rs",
     "            let earlier = id >= current.first_attempt && id < self.next_attempt;",
     "            let earlier = false && id >= current.first_attempt && id < self.next_attempt;",
     SHARD_CLERK),
    ("shard-clerk-keeps-suspecting-a-server-that-answered", "core/src/shard/clerk.rs",
     "        self.suspects.clear(from);",
     "        // self.suspects.clear(from);",
     SHARD_CLERK),
    ("removed-id-added-back (ids reused)", "core/src/raft/membership.rs",
     "                if self.is_removed(id) =>",
     "                if false && self.is_removed(id) =>",
     RULES),
    ("sharded-retry-of-a-dropped-session-applied-again (no tombstones)", "core/src/kv/session.rs",
     "if self.dropped_through(client).is_some_and(|last| seq <= last) {",
     "if false && self.dropped_through(client).is_some_and(|last| seq <= last) {",
     SHARD_SWEEP),
    ("retire-with-shards-in-flight (Sending, not yet acknowledged by their new owner and deleted)",
     "core/src/shard/host/retire.rs",
     " && kv.shards().is_empty();", ";", RETIREMENT),
    ("retired-answered-before-the-controller's-log-holds-the-retirement", "core/src/shard/host/retire.rs",
     "        if controller.is_retired(group) && may_retire {", "        if may_retire {", RETIREMENT),
    ("retire-although-a-later-configuration-gives-the-group-shards (only the latest checked)",
     "core/src/shard/controller.rs",
     "            && self.configs[from..]\n", "            && self.configs[self.configs.len() - 1..]\n",
     CONTROLLER),
    ("retired-group-hosted-again-after-a-restart (the stored tombstones ignored)", "core/src/shard/host.rs",
     "            if group != CONTROLLER && config.retired.contains(&group) {",
     "            if group != CONTROLLER && false && config.retired.contains(&group) {",
     RETIREMENT),
    ("push-to-a-retired-group-never-acknowledged (an old owner that missed its ack pushes for ever)",
     "core/src/shard/host/migration.rs",
     "            None if self.retired.contains(&to_group) => true,",
     "            None if false && self.retired.contains(&to_group) => true,",
     RETIREMENT),
    ("push-to-any-group-not-hosted-acknowledged (not only a retired one: the old owner deletes unreplicated data)",
     "core/src/shard/host/migration.rs",
     "            None if self.retired.contains(&to_group) => true,",
     "            None if true || self.retired.contains(&to_group) => true,",
     SHARD_HOST),
    ("shard-part-taken-out-of-order (a part that skips ahead, or a repeat, goes in: keys lost or the last part early)",
     "core/src/shard/group.rs",
     "                    && s.data.keys().next_back() == after.as_ref()\n",
     "                    && (true || s.data.keys().next_back() == after.as_ref())\n",
     SHARD_GROUP),
    ("shard-parts-without-their-sessions (a retried write applied again at the new owner)",
     "core/src/shard/group.rs",
     "                    if last {\n                        s.sessions = sessions;\n",
     "                    if last {\n                        let _ = sessions;\n",
     SHARD_GROUP),
    ("shard-part-lost-never-proposed-again (a part proposed and lost is taken for in the log: the move stalls)",
     "core/src/shard/host/migration.rs",
     "        if (ahead || (stale && held == after)) && self.propose_internal(now, to_group, part) {\n",
     "        if ahead && self.propose_internal(now, to_group, part) {\n",
     SHARD_HOST),
    ("shard-part-window-never-started-over (a part lost on the way is never sent again: the move stalls)",
     "core/src/shard/host/migration.rs",
     "                        Some(window) if now.as_millis() < window.moved_at.as_millis() + poll => {\n",
     "                        Some(_) => {\n",
     SHARD_HOST),
    ("shard-part-sessions-always-with-the-last-keys (the last part may pass an entry's limit: the move stalls)",
     "core/src/shard/group.rs",
     "            if data.len() <= max_bytes || part.is_empty() {\n",
     "            if !data.is_empty() {\n",
     SHARD_GROUP),
    ("shard-whole-push-sessions-not-counted (a small shard with many sessions is pushed whole past an entry's limit: the move stalls)",
     "core/src/shard/host/migration.rs",
     "                    kv.export(shard).filter(|data| data.len() <= part_bytes)\n",
     "                    kv.export(shard)\n",
     SHARD_HOST),
    ("shard-move-records-kept (a replica that answered parts without proposing one keeps their record for ever)",
     "core/src/shard/host/migration.rs",
     "        self.parts_acked.retain(|key, _| pulling(key));\n",
     "        let _ = &pulling;\n",
     SHARD_HOST),
    ("exports-held-first-taken-gives-way (a new export evicts the oldest taken, not the least recently used)",
     "core/src/held.rs",
     "                && let Some(oldest) = (0..self.held.len()).min_by_key(|i| self.held[*i].3)\n",
     "                && let Some(oldest) = (0..self.held.len()).min_by_key(|i| *i)\n",
     SHARD_EXPORT),
    ("exports-held-one (a host holds one export: two backups at once start each other's shards over)",
     "core/src/held.rs",
     "            if self.held.len() >= HELD_AT_ONCE\n",
     "            if !self.held.is_empty()\n",
     SHARD_EXPORT),
    ("exports-held-never-idle (an export a backup gave up keeps its copy in memory)",
     "core/src/held.rs",
     "used.as_millis()) < HELD_IDLE_MS\n",
     "used.as_millis()) < u64::MAX\n",
     SHARD_EXPORT),
    ("export-of-a-shard-not-served (an old owner exports what it still sends, a new one what has not arrived)",
     "core/src/shard/host/apply.rs",
     "                        Some(ShardStatus::Serving) => Ok(HeldExport {",
     "                        Some(_) => Ok(HeldExport {",
     SHARD_SWEEP),
    ("export-taken-without-a-read-index (a cut-off replica exports its stale state)",
     "core/src/shard/host/clients.rs",
     "                self.handle_follower_read(now, from, id, group, ReadWhat::Export(shard));\n",
     "                if let Some(hosted) = self.groups.get_mut(&group) {\n"
     "                    let waiter = ReadWaiter { to: from, id, what: ReadWhat::Export(shard) };\n"
     "                    hosted.ready_reads.push((0, waiter));\n"
     "                    self.touched.push(group);\n"
     "                }\n",
     SHARD_SWEEP),
]


def run(command):
    """Whether the tests failed: True (caught), False (escaped), or None when
    the mutant does not even build (then it proves nothing); and the sweep's
    tally of failing seeds, if the test was the sweep."""
    done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True)
    if "could not compile" in done.stderr:
        return None, ""
    tally = re.search(r"(\d+) (?:sharded )?seeds, .* (\d+) failed", done.stdout + done.stderr)
    detail = f" ({tally.group(2)} of {tally.group(1)} seeds fail)" if tally else ""
    return done.returncode != 0, detail


def main():
    escaped = 0
    for name, result in each_mutant(ROOT, MUTATIONS, sys.argv[1:], run):
        if result is None:
            escaped += 1
            continue
        caught, detail = result
        if caught is None:
            print(f"BROKEN   {name}: the mutant does not build", flush=True)
            escaped += 1
            continue
        print(f"{'caught ' if caught else 'ESCAPED'}  {name}{detail}", flush=True)
        escaped += not caught
    sys.exit(1 if escaped else 0)


if __name__ == "__main__":
    main()
