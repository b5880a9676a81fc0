//! A numbered configuration ([`ShardConfig`]): who owns each shard and
//! which servers make up each group, and its encoding (in controller
//! snapshots and in the groups' log commands).

use super::*;

/// One numbered configuration: who owns each shard, and which servers
/// (host ids) make up each group.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShardConfig {
    /// Configuration number; 0 is the initial, empty one.
    pub num: u64,
    /// Owner of each shard (index = shard id); 0: no owner.
    /// Invariant: every non-zero owner is a key of `groups`.
    pub shards: Vec<GroupId>,
    /// Servers of each group (host ids, in the group's Raft id order).
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
}

impl ShardConfig {
    /// Configuration 0 of a service with `shards` shards.
    pub fn initial(shards: u32) -> ShardConfig {
        ShardConfig {
            num: 0,
            shards: vec![0; shards as usize],
            groups: BTreeMap::new(),
        }
    }

    /// The group owning `shard` (0: none, or out of range).
    pub fn owner(&self, shard: ShardId) -> GroupId {
        self.shards.get(shard as usize).copied().unwrap_or(0)
    }

    /// The shards `group` owns.
    pub fn shards_of(&self, group: GroupId) -> impl Iterator<Item = ShardId> + '_ {
        self.shards
            .iter()
            .enumerate()
            .filter(move |(_, g)| **g == group)
            .map(|(s, _)| s as ShardId)
    }

    /// How many shards each group owns (groups with none included).
    pub fn load(&self) -> BTreeMap<GroupId, usize> {
        let mut load: BTreeMap<GroupId, usize> = self.groups.keys().map(|g| (*g, 0)).collect();
        for g in &self.shards {
            if let Some(n) = load.get_mut(g) {
                *n += 1;
            }
        }
        load
    }

    pub(crate) fn encode_into(&self, e: &mut Encoder) {
        e.varint(self.num).varint(self.shards.len() as u64);
        for g in &self.shards {
            e.varint(*g);
        }
        e.varint(self.groups.len() as u64);
        for (g, servers) in &self.groups {
            e.varint(*g).varint(servers.len() as u64);
            for s in servers {
                e.varint(*s);
            }
        }
    }

    pub(crate) fn decode_from(d: &mut Decoder) -> Result<ShardConfig, DecodeError> {
        let num = d.varint()?;
        // Every count is bounded by the bytes left (each item takes at
        // least one), so malformed input cannot ask for a huge allocation.
        let count = d.length()?;
        let mut shards = Vec::with_capacity(count);
        for _ in 0..count {
            shards.push(d.varint()?);
        }
        let mut groups = BTreeMap::new();
        for _ in 0..d.length()? {
            let g = d.varint()?;
            let n = d.length()?;
            let mut servers = Vec::with_capacity(n);
            for _ in 0..n {
                servers.push(d.varint()?);
            }
            groups.insert(g, servers);
        }
        let config = ShardConfig {
            num,
            shards,
            groups,
        };
        if config
            .shards
            .iter()
            .any(|g| *g != 0 && !config.groups.contains_key(g))
        {
            return Err(DecodeError::Invalid("shard owner not in the configuration"));
        }
        Ok(config)
    }
}
