#!/usr/bin/env python3
"""Puts known durability bugs into the native storage, one at a time, and
checks that the storage tests (all of which run in CI) catch each of them:
evidence that the power-cut model and the corruption tests would fail if the
storage were broken. Restores every file afterwards. Opt-in (a few minutes):

    scripts/storage-mutants.py              # every mutation
    scripts/storage-mutants.py seal         # those whose name contains "seal"

Each line of the report names the failing tests and the first failure message.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "lib"))
from mutation import each_mutant  # noqa: E402


def tests(*modules, skip=()):
    """The command running every test of the given modules of the storage test
    binary (a filter matches anywhere in a test's name: `skip` leaves out the
    modules whose name ends like a wanted one)."""
    return ("cargo test -p distribkv-native --no-fail-fast --test storage -- "
            + " ".join(f"{m}::" for m in modules)
            + "".join(f" --skip {m}::" for m in skip))


POWER_CUT = tests("power_cut", skip=("multi_power_cut",))
CORRUPTION = tests("recovery", "bit_rot")

# (name, file, text to replace, replacement, test command that must fail)
MUTATIONS = [
    ("durable-reported-before-its-fsync (sync reports the appended writes durable once handed to the kernel, before any fsync)",
     "native/src/storage/raft_storage.rs",
     "        let synced = self.flush_and_sync(true);\n",
     "        let synced = self.active.flush();\n",
     POWER_CUT),
    ("no-folder-fsync-after-creating-a-segment",
     "native/src/storage/segment.rs",
     "        disk.write_atomically(&path, &(self.temporary)(&self.dir, number), &[&header])?;",
     "        disk.write_and_rename(&path, &(self.temporary)(&self.dir, number), &[&header])?;",
     POWER_CUT),
    ("no-folder-fsync-after-renaming-a-snapshot-into-place",
     "native/src/storage/snapshot_file.rs",
     "    disk.write_atomically(path, temporary, &[&header, &prefix, payload])\n",
     "    disk.write_and_rename(path, temporary, &[&header, &prefix, payload])\n",
     POWER_CUT),
    ("trusting-a-record-whose-checksum-fails",
     "native/src/storage/format/frame.rs",
     "    if crc32c::crc32c(&data[offset + 4..end]) != read_u32(data, offset) {",
     "    if false && crc32c::crc32c(&data[offset + 4..end]) != read_u32(data, offset) {",
     CORRUPTION),
    ("seal-not-fsynced-when-it-is-the-only-unsynced-record (issue 15)",
     "native/src/storage/segment.rs",
     "        self.unsynced = true;\n        self.sync()?;",
     "        self.sync()?;",
     POWER_CUT),
    ("new-folders-not-made-durable-in-their-parent (issue 15)",
     "native/src/storage/file.rs",
     "        for folder in created {\n            self.sync_dir(parent_of(folder))?;\n        }",
     "        drop(created);",
     POWER_CUT),
    ("segments-removed-without-a-folder-fsync-between-removals",
     "native/src/storage/raft_storage.rs",
     "                self.disk.remove(&segment_path(&self.dir, number))?;\n"
     "                self.disk.sync_dir(&self.dir)?;\n",
     "                self.disk.remove(&segment_path(&self.dir, number))?;\n",
     POWER_CUT),
    ("no-fsync-of-the-checkpoint-before-removing-segments",
     "native/src/storage/raft_storage.rs",
     "            self.push_scratch()?;\n            self.flush_and_sync(false)?;\n",
     "            self.push_scratch()?;\n            self.active.flush()?;\n",
     POWER_CUT),
    ("damaged-last-record-always-taken-for-a-torn-write",
     "native/src/storage/segment.rs",
     "                    || !looks_torn(data, offset, &problem)\n",
     "",
     CORRUPTION),
    ("a-sector-that-starts-with-zeros-taken-for-a-torn-write (zeros then data in one sector)",
     "native/src/storage/format/frame.rs",
     "                if data[start..sector_end.min(data.len())]\n",
     "                if data[start..(start + 1).min(data.len())]\n",
     CORRUPTION),
    ("an-identity-file-with-trailing-bytes-accepted",
     "native/src/storage/listing.rs",
     "    if bytes.len() != FILE_HEADER_LEN {\n",
     "    if bytes.len() < FILE_HEADER_LEN {\n",
     CORRUPTION),
    ("a-lost-first-segment-after-a-compaction-opened (the checkpoint's first segment kept ignored)",
     "native/src/storage/recovery.rs",
     "replay.first_kept.is_some_and(|kept| first > kept)",
     "replay.first_kept.is_some_and(|kept| first > kept && kept == 0)",
     CORRUPTION),
    ("zeros-after-the-last-record-taken-for-a-torn-tail (the scan's zero end removed)",
     "native/src/storage/segment.rs",
     "            Frame::Damaged(_) if data[offset..].iter().all(|&byte| byte == 0) => break,\n",
     "",
     tests("recovery", "power_cut", skip=("multi_power_cut",))),
    ("a-sealed-segment-keeps-its-zeros (no cut to the seal at a roll)",
     "native/src/storage/segment.rs",
     "            self.file.truncate(sealed_length)?;\n",
     "",
     tests("recovery", "power_cut", skip=("multi_power_cut",))),
    ("a-full-disk-fails-records-over-zeros (records spend the disk's room like new blocks)",
     "native/src/storage/file.rs",
     "    pub(crate) fn overwrite(&mut self, bytes: &[u8]) -> Result<(), StorageError> {\n",
     "    pub(crate) fn overwrite(&mut self, bytes: &[u8]) -> Result<(), StorageError> {\n"
     "        #[allow(clippy::needless_return)]\n        return self.write_all(bytes);\n        #[allow(unreachable_code)]\n",
     tests("faults")),
    ("snapshot-content-unchecked",
     "native/src/storage/snapshot_file.rs",
     "    if crc32c::crc32c(payload) != read_u32(&bytes, FILE_HEADER_LEN + 8) {",
     "    if false && crc32c::crc32c(payload) != read_u32(&bytes, FILE_HEADER_LEN + 8) {",
     CORRUPTION),
]


def run(command):
    """Runs the tests; returns the exit code (or "timeout"), the failed tests
    and the first failure message."""
    try:
        done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        return "timeout", [], ""
    output = done.stdout + done.stderr
    failed = re.findall(r"^test (\S+) \.\.\. FAILED", output, re.MULTILINE)
    message = re.search(r"panicked at [^\n]*\n([^\n]*)", output)
    return done.returncode, failed, message.group(1)[:300] if message else ""


def main():
    escaped = 0
    for name, result in each_mutant(ROOT, MUTATIONS, sys.argv[1:], run):
        if result is None:
            escaped += 1
            continue
        outcome, failed, message = result
        caught = outcome not in (0, "timeout") and failed
        note = " (the tests hung)" if outcome == "timeout" else ""
        print(f"{'caught ' if caught else 'ESCAPED'}  {name}{note}", flush=True)
        for test_name in failed:
            print(f"           failed: {test_name}")
        if message:
            print(f"           first failure: {message}")
        escaped += not caught
    sys.exit(1 if escaped else 0)


if __name__ == "__main__":
    main()
