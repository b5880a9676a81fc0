//! Node configuration, validated before a node is built.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::types::NodeId;

/// The longest election timeout a [`Config`] accepts, in ms (a day): far
/// beyond any real network's, and small enough that the deadlines and
/// timeouts derived from it (several times the timeout, plus `now`) cannot
/// overflow.
pub const MAX_ELECTION_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// How a Raft node behaves. Build one with [`Config::new`] and adjust fields;
/// [`Node::new`](super::Node::new) validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: NodeId,
    /// The initial voting members, this node included unless it starts as a learner.
    pub voters: Vec<NodeId>,
    /// Initial non-voting members.
    pub learners: Vec<NodeId>,
    /// Where the initial members are reached (opaque to Raft; empty in the
    /// simulator): the first configuration's
    /// [`Membership::addresses`](super::Membership::addresses).
    pub addresses: Vec<(NodeId, String)>,
    /// Election timeouts are drawn uniformly from `election_timeout_min..election_timeout_max` ms.
    pub election_timeout_min: u64,
    /// Upper bound (exclusive) of the election timeout, in ms.
    pub election_timeout_max: u64,
    /// Interval between leader heartbeats, in ms. Must be well below `election_timeout_min`.
    pub heartbeat_interval: u64,
    /// Run a PreVote round before incrementing the term (§9.6 of the dissertation),
    /// so a node that was partitioned away does not disrupt a healthy leader when it returns.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for
    /// [`Config::check_quorum_timeout`] (and tells its most up-to-date
    /// follower to campaign at once), and followers that heard from a leader
    /// within the minimum election timeout refuse to vote for anyone else
    /// (leader stickiness).
    pub check_quorum: bool,
    /// Serve reads from a leader lease instead of a ReadIndex round. Off by
    /// default: it assumes clocks drift apart by at most `max_clock_drift_percent`.
    pub lease_reads: bool,
    /// The clock drift lease reads allow for, in percent: any two nodes'
    /// clocks are assumed to run at rates such that a span one measures as
    /// 100 ms, any other measures as at least `100 - max_clock_drift_percent`
    /// ms (10, the default, allows about ±5% each against real time). The
    /// leader's lease lasts `election_timeout_min * (100 - drift) / 100` on
    /// its clock, which then ends before any follower's promise of
    /// `election_timeout_min` on its own clock. Offsets do not matter.
    pub max_clock_drift_percent: u64,
    /// Most entries in one AppendEntries.
    pub max_entries_per_message: usize,
    /// Most entry bytes in one AppendEntries (at least one entry is always sent).
    pub max_bytes_per_message: usize,
    /// Most AppendEntries in flight to one follower in the replicate state (pipelining window).
    pub max_inflight_messages: usize,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Largest command accepted by a proposal, in bytes.
    pub max_entry_bytes: usize,
    /// Proposals are refused with [`Rejected::Busy`](super::Rejected::Busy)
    /// while this many bytes of the leader's log are uncommitted.
    pub max_uncommitted_bytes: usize,
    /// Largest snapshot a follower accepts, in bytes.
    pub max_snapshot_bytes: u64,
}

impl Config {
    /// A configuration with the default timing (election timeout 150–300 ms,
    /// heartbeat 50 ms), PreVote and CheckQuorum on, lease reads off.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            voters: voters.into_iter().collect(),
            learners: Vec::new(),
            addresses: Vec::new(),
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            max_clock_drift_percent: 10,
            max_entries_per_message: 512,
            max_bytes_per_message: 1 << 20,
            max_inflight_messages: 64,
            snapshot_chunk_bytes: 64 * 1024,
            max_entry_bytes: 4 << 20,
            max_uncommitted_bytes: 64 << 20,
            max_snapshot_bytes: 1 << 32,
        }
    }

    /// How long a leader goes without hearing from a majority before
    /// CheckQuorum makes it step down: `2 * (election_timeout_min +
    /// heartbeat_interval)`, 1.2 s with the native server's defaults.
    ///
    /// A follower tolerates messages delayed by up to about
    /// `election_timeout_min` one way: the first delayed heartbeat reaches
    /// it before it times out (and an early timeout costs nothing: PreVote
    /// fails while the other followers still hear the leader). The leader
    /// should tolerate the same delay on the round trip: when every link
    /// becomes that slow at once, the answers stop for two delays (those
    /// to messages sent before the change had already come back, those to
    /// later ones take the slow way both ways), plus up to a heartbeat
    /// interval each way before the stream of heartbeats and their answers
    /// flows again. A leader that stepped down then could not be replaced
    /// while the delay lasts: a round trip longer than the election timeout
    /// makes every election round expire before its answers arrive.
    ///
    /// The price is paid by a leader that really hears nobody: it keeps
    /// its followers from electing anyone for this long. It hands over with
    /// `TimeoutNow` when it steps down, so a new leader follows within a
    /// round trip instead of another election timeout.
    pub fn check_quorum_timeout(&self) -> u64 {
        2 * (self.election_timeout_min + self.heartbeat_interval)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        let mut members: Vec<NodeId> = self.voters.iter().chain(&self.learners).copied().collect();
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if members.contains(&0) {
            return Err(ConfigError::ZeroId);
        }
        members.sort_unstable();
        if members.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateMember);
        }
        if !members.contains(&self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        if self.election_timeout_min == 0
            || self.election_timeout_max <= self.election_timeout_min
            || self.election_timeout_max > MAX_ELECTION_TIMEOUT_MS
        {
            return Err(ConfigError::ElectionTimeout {
                min: self.election_timeout_min,
                max: self.election_timeout_max,
            });
        }
        if self.heartbeat_interval == 0 || self.heartbeat_interval >= self.election_timeout_min {
            return Err(ConfigError::HeartbeatInterval {
                heartbeat: self.heartbeat_interval,
                election_min: self.election_timeout_min,
            });
        }
        if self.max_entries_per_message == 0
            || self.max_bytes_per_message == 0
            || self.max_inflight_messages == 0
            || self.snapshot_chunk_bytes == 0
            || self.max_entry_bytes == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        if self.lease_reads && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if self.max_clock_drift_percent >= 100 {
            return Err(ConfigError::ClockDrift(self.max_clock_drift_percent));
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Node ids must be non-zero.
    ZeroId,
    /// The cluster needs at least one voter.
    NoVoters,
    /// A node is listed twice among voters and learners.
    DuplicateMember,
    /// The node itself is not among the voters or learners.
    NotAMember(NodeId),
    /// The election timeout range is empty or zero, or ends past
    /// [`MAX_ELECTION_TIMEOUT_MS`].
    ElectionTimeout {
        /// Configured minimum.
        min: u64,
        /// Configured maximum.
        max: u64,
    },
    /// The heartbeat must be non-zero and shorter than the minimum election timeout.
    HeartbeatInterval {
        /// Configured heartbeat.
        heartbeat: u64,
        /// Configured minimum election timeout.
        election_min: u64,
    },
    /// A size or count limit is zero.
    ZeroLimit,
    /// Clock drift must be below 100%.
    ClockDrift(u64),
    /// Lease reads rely on CheckQuorum's leader stickiness.
    LeaseWithoutCheckQuorum,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroId => write!(f, "node ids must be non-zero"),
            ConfigError::NoVoters => write!(f, "the cluster needs at least one voter"),
            ConfigError::DuplicateMember => write!(f, "a node is listed twice"),
            ConfigError::NotAMember(id) => write!(f, "node {id} is not a member of the cluster"),
            ConfigError::ElectionTimeout { min, max } if *min > 0 && max > min => write!(
                f,
                "election timeout range {min}..{max} ms ends past the longest allowed, {MAX_ELECTION_TIMEOUT_MS} ms"
            ),
            ConfigError::ElectionTimeout { min, max } => {
                write!(f, "election timeout range {min}..{max} ms is empty or zero")
            }
            ConfigError::HeartbeatInterval {
                heartbeat,
                election_min,
            } => write!(
                f,
                "heartbeat interval {heartbeat} ms must be non-zero and below the minimum election timeout {election_min} ms"
            ),
            ConfigError::ZeroLimit => write!(f, "message, window and size limits must be non-zero"),
            ConfigError::ClockDrift(p) => write!(f, "clock drift {p}% must be below 100%"),
            ConfigError::LeaseWithoutCheckQuorum => write!(
                f,
                "lease reads need CheckQuorum: followers must refuse to elect anyone else while the lease runs"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}
