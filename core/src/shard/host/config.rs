//! A host's configuration, and why a host could not be built.

use super::*;

/// The default of [`HostConfig::shard_part_bytes`]: 1 MiB.
pub const SHARD_PART_BYTES: usize = 1 << 20;

/// The default of [`HostConfig::shard_parts_in_flight`].
pub const SHARD_PARTS_IN_FLIGHT: usize = 4;

/// How a host behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// This host's id (non-zero); it is the Raft node id of every replica here.
    pub id: NodeId,
    /// Number of shards of the service.
    pub shards: u32,
    /// The controller group's servers (host ids). If this host is one, it
    /// holds a controller replica.
    pub controller: Vec<NodeId>,
    /// The shard groups replicated here, with their servers (host ids).
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
    /// Raft timing and limits of every group (its `id`, `voters` and
    /// `learners` are set per group).
    pub raft: Config,
    /// State machine limits (the same on every host).
    pub limits: StoreLimits,
    /// Snapshot a group once this many entries were applied since its last one (0: never).
    pub snapshot_every: u64,
    /// Timer granularity, ms: group deadlines are rounded up to a multiple.
    pub tick_ms: u64,
    /// How often leaders ask for the next configuration and push shards, ms.
    pub poll_ms: u64,
    /// Record applied entries for [`Host::drain_applied`] (the simulator's checkers).
    pub record_applied: bool,
    /// Let a group with no traffic hibernate after this many ms (0: never).
    pub hibernate_after_ms: u64,
    /// A replica of a group that left the configuration and handed every
    /// shard over asks the controller to retire the group once it has been
    /// so for this many ms (0: never); until then the group may join again
    /// under its id. See "Retirement" in the module documentation of `host`.
    pub retire_after_ms: u64,
    /// Groups this host retired before (from its storage): not hosted even
    /// if listed in `groups`; their peers' messages are answered with
    /// [`HostMessage::Retired`].
    pub retired: BTreeSet<GroupId>,
    /// A shard whose keys and values hold more bytes than this moves in
    /// parts of about this size ([`HostMessage::ShardPushPart`]), each its
    /// own log entry at the new owner, so that no message or entry grows
    /// with the shard (at least one key per part).
    pub shard_part_bytes: usize,
    /// How many parts of a shard moving in parts the old owner's leader
    /// sends ahead of the progress the new owner reported (at least 1):
    /// the new owner proposes each as it comes, so their round trips
    /// overlap.
    pub shard_parts_in_flight: usize,
}

impl HostConfig {
    /// Host `id` with the default timing (Raft defaults, tick 10 ms, poll 100 ms).
    pub fn new(id: NodeId, shards: u32, controller: Vec<NodeId>) -> HostConfig {
        HostConfig {
            id,
            shards,
            controller,
            groups: BTreeMap::new(),
            raft: Config::new(id, [id]),
            limits: StoreLimits::default(),
            snapshot_every: 10_000,
            tick_ms: 10,
            poll_ms: 100,
            record_applied: false,
            hibernate_after_ms: 0,
            retire_after_ms: 10_000,
            retired: BTreeSet::new(),
            shard_part_bytes: SHARD_PART_BYTES,
            shard_parts_in_flight: SHARD_PARTS_IN_FLIGHT,
        }
    }
}

/// Why a host could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// A group's Raft configuration is invalid.
    Config(GroupId, ConfigError),
    /// A group's persisted snapshot does not decode.
    Snapshot(GroupId, DecodeError),
    /// Group 0 is the controller's: shard groups need other ids.
    ReservedGroup,
    /// A listed group does not have this host among its servers.
    NotAMember(GroupId),
    /// Zero shards or more than [`MAX_SHARDS`], or a zero tick or poll interval.
    Timing,
    /// Lease reads are not supported across coalesced timers.
    LeaseReads,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Config(g, e) => write!(f, "group {g}: invalid configuration: {e}"),
            HostError::Snapshot(g, e) => write!(f, "group {g}: persisted snapshot is corrupt: {e}"),
            HostError::ReservedGroup => write!(f, "group 0 is reserved for the controller"),
            HostError::NotAMember(g) => write!(f, "this host is not a server of group {g}"),
            HostError::Timing => write!(
                f,
                "shards must be 1 to {MAX_SHARDS}, and tick_ms and poll_ms positive"
            ),
            HostError::LeaseReads => write!(f, "lease reads are not supported on a host"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HostError {}
