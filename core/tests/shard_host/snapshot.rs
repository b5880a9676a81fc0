//! A snapshot on the driver's request (`Host::snapshot_group`), for a
//! storage whose old log a quiet group's tail keeps alive.

use crate::configs;

use distribkv_core::shard::host::HostOutput;
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

#[test]
fn a_requested_snapshot_is_taken_at_the_applied_index_and_written() {
    let mut mesh = Mesh::new(configs(3, 1, 10), 1).unwrap();
    mesh.run_until(Instant(3_000));
    let now = mesh.now();
    let host = mesh.hosts.get_mut(&1).unwrap();
    let applied = host.node(1).unwrap().log().applied();
    assert!(applied > 0, "the group applied its leader's no-op");
    assert_eq!(host.node(1).unwrap().log().snapshot().index, 0);

    assert!(host.snapshot_group(now, 1));
    assert_eq!(host.node(1).unwrap().log().snapshot().index, applied);
    let mut written = None;
    while let Some(output) = host.poll_output() {
        if let HostOutput::Persist(step) = output {
            for (group, write) in step.writes {
                if let Some(snapshot) = write.snapshot {
                    written = Some((group, snapshot.meta.index));
                }
            }
        }
    }
    assert_eq!(
        written,
        Some((1, applied)),
        "the snapshot's write comes out"
    );

    // Nothing applied since, a group not held here: nothing to do.
    assert!(!host.snapshot_group(now, 1));
    assert!(!host.snapshot_group(now, 99));
}
