#!/usr/bin/env python3
"""Puts known Raft and service bugs into the core, one at a time, and checks
that the tests catch each of them: evidence that the checkers would fail if
the code were broken. Restores every file afterwards. Opt-in (a few minutes):

    scripts/mutants.py            # every mutation
    scripts/mutants.py stale-read # one of them
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP = "DISTRIBKV_SEEDS=3000 cargo test -q --release -p distribkv-core --features sim --test sweep"
GOLDEN = "cargo test -q -p distribkv-core --features sim --test scenarios"
RULES = "cargo test -q -p distribkv-core --test raft_rules"

# (name, file, text to replace, replacement, test command that must fail)
MUTATIONS = [
    ("commit-old-terms-by-counting (Figure 8, §5.4.2)", "core/src/raft/replication.rs",
     "if index > self.log.commit() && self.log.term_at(index) == Some(self.term) {",
     "if index > self.log.commit() {", GOLDEN),
    ("vote-without-up-to-date-check (§5.4.1)", "core/src/raft/election.rs",
     "let granted = can_vote && up_to_date;", "let granted = can_vote;", SWEEP),
    ("ack-appends-before-fsync", "core/src/raft/replication.rs",
     "    fn answer_append(&mut self, to: NodeId, index: LogIndex) {\n        self.send_when_durable(",
     "    fn answer_append(&mut self, to: NodeId, index: LogIndex) {\n        self.send(", SWEEP),
    ("stale-read (gets served without ReadIndex)", "core/src/kv/replica.rs",
     "                if let Operation::Get { key } = operation {\n",
     "                if let Operation::Get { key } = operation {\n                    if self.node.is_leader() {\n"
     "                        let value = self.store.get(&key).cloned();\n"
     "                        self.reply(from, id, Ok(Reply::Done(value)));\n                        return;\n                    }\n",
     SWEEP),
    ("no-exactly-once (retried writes applied again)", "core/src/kv/store.rs",
     "SessionCheck::Duplicate(result) => Applied::Write {", "SessionCheck::Duplicate(result) if false => Applied::Write {",
     SWEEP),
    ("follower-commits-past-the-leader's-entries (§5.3 step 5)", "core/src/raft/replication.rs",
     "self.log.commit_to(request.leader_commit.min(last_new));", "self.log.commit_to(request.leader_commit);", RULES),
    ("no-term-check-on-append (stale leader accepted)", "core/src/raft/node.rs",
     "        } else if term < self.term {\n            self.stats.stale_term += 1;\n            self.answer_stale(from, &message);\n            return;\n        }",
     "        } else if term < self.term && !matches!(message, Message::AppendEntries(_)) {\n            self.stats.stale_term += 1;\n            self.answer_stale(from, &message);\n            return;\n        }",
     RULES),
]


def run(command):
    return subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True).returncode


def main():
    wanted = sys.argv[1:]
    escaped = 0
    for name, file, old, new, test in MUTATIONS:
        if wanted and not any(w in name for w in wanted):
            continue
        path = ROOT / file
        original = path.read_text()
        if old not in original:
            print(f"SKIPPED  {name}: the code it mutates has changed ({file})")
            escaped += 1
            continue
        try:
            path.write_text(original.replace(old, new, 1))
            caught = run(test) != 0
        finally:
            path.write_text(original)
        print(f"{'caught ' if caught else 'ESCAPED'}  {name}")
        escaped += not caught
    sys.exit(1 if escaped else 0)


if __name__ == "__main__":
    main()
