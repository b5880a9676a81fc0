//! The constructor's config: `ShardedConfig`'s fields read and checked
//! into the core's [`ShardedConfig`], with each group's hosts.

use distribkv_core::raft::{Config, ConfigError, MAX_ELECTION_TIMEOUT_MS, NodeId};
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostError;
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSimError};
use wasm_bindgen::prelude::*;

use super::{
    DEFAULT_ADMIN_TIMEOUT_MS, DEFAULT_TRACE_CAPACITY, FIRST_GROUP, MAX_GROUPS, MAX_HOSTS,
    MAX_REPLICAS, MAX_SHARDED_CLIENTS, MAX_SHARDS,
};
use crate::args::{self, Fields, error};

const CONFIG_FIELDS: &[&str] = &[
    "seed",
    "hosts",
    "groups",
    "replicas",
    "shards",
    "controllerReplicas",
    "placement",
    "join",
    "clients",
    "keys",
    "latencyMs",
    "dropRate",
    "electionTimeoutMs",
    "heartbeatMs",
    "snapshotEvery",
    "adminTimeoutMs",
    "traceCapacity",
    "followerReads",
];

/// Reads the constructor's config into the core's.
/// What the constructor reads besides the core's config.
pub(super) struct PageConfig {
    /// The groups to join at the start.
    pub join: Vec<GroupId>,
    /// How long a page operation may wait (ms).
    pub admin_timeout: u64,
    /// Journal lines kept for `events()` (0: no journal).
    pub trace_capacity: usize,
}

pub(super) fn sharded_config(value: &JsValue) -> Result<(ShardedConfig, PageConfig), JsError> {
    let fields = Fields::new(value, "config", CONFIG_FIELDS)?;
    let mut config = ShardedConfig::small(fields.read("seed", args::integer_u64)?.unwrap_or(1));
    let bounded = |name: &str, min: u64, max: u64, default: u64| -> Result<u64, JsError> {
        let n = fields.read(name, args::integer)?.unwrap_or(default);
        if n < min || n > max {
            return Err(error(format!(
                "config.{name} must be {min} to {max}, not {n}"
            )));
        }
        Ok(n)
    };
    let placement = match fields.get("placement") {
        Some(value) => Some(placement(&value)?),
        None => None,
    };
    let hosts = bounded(
        "hosts",
        1,
        MAX_HOSTS,
        placement
            .as_ref()
            .and_then(|p| p.iter().flatten().max().copied())
            .unwrap_or(5)
            .max(3),
    )?;
    let groups = match &placement {
        Some(p) => {
            if fields.get("groups").is_some() || fields.get("replicas").is_some() {
                return Err(error(
                    "config.placement lists each group's hosts: give it without config.groups and config.replicas",
                ));
            }
            for (i, servers) in p.iter().enumerate() {
                for host in servers {
                    if *host == 0 || *host > hosts {
                        return Err(error(format!(
                            "config.placement[{i}] names host {host}, but host ids are 1 to {hosts}"
                        )));
                    }
                }
            }
            p.clone()
        }
        None => {
            let groups = bounded("groups", 1, MAX_GROUPS, 3)?;
            let replicas = bounded("replicas", 1, MAX_REPLICAS.min(hosts), 3.min(hosts))?;
            // Round robin: group i's replicas on consecutive hosts, so
            // every host holds about the same number of replicas.
            (0..groups)
                .map(|i| {
                    (0..replicas)
                        .map(|j| (i * replicas + j) % hosts + 1)
                        .collect()
                })
                .collect()
        }
    };
    let controller = bounded(
        "controllerReplicas",
        1,
        MAX_REPLICAS.min(hosts),
        3.min(hosts),
    )?;
    config.hosts = hosts;
    config.host.controller = (1..=controller).collect();
    config.host.groups = groups
        .into_iter()
        .enumerate()
        .map(|(i, servers)| (FIRST_GROUP + i as u64, servers))
        .collect();
    config.host.shards = bounded("shards", 1, MAX_SHARDS, 10)? as u32;
    config.clients = bounded("clients", 0, MAX_SHARDED_CLIENTS, 3)?;
    config.keys = bounded("keys", 1, 1000, 6)?;
    fields.set(
        "latencyMs",
        args::latency_range,
        &mut config.network.latency,
    )?;
    if let Some(rate) = fields.read("dropRate", args::number)? {
        if !(0.0..=0.5).contains(&rate) {
            return Err(error(format!(
                "config.dropRate must be 0 to 0.5, not {rate}"
            )));
        }
        config.network.drop_rate = rate;
    }
    let mut raft = Config::new(1, [1]);
    if let Some((min, max)) = fields.read("electionTimeoutMs", args::range)? {
        if min == 0 {
            return Err(error(format!(
                "config.electionTimeoutMs must start at 1 ms or more, not [{min}, {max}]"
            )));
        }
        raft.election_timeout_min = min;
        raft.election_timeout_max = max;
    }
    if let Some(ms) = fields.read("heartbeatMs", args::integer)? {
        if ms == 0 || ms >= raft.election_timeout_min {
            return Err(error(format!(
                "config.heartbeatMs must be at least 1 and below the election timeout's minimum ({}), not {ms}",
                raft.election_timeout_min
            )));
        }
        raft.heartbeat_interval = ms;
    }
    config.host.raft = raft;
    fields.set(
        "snapshotEvery",
        args::integer,
        &mut config.host.snapshot_every,
    )?;
    let join = match fields.get("join") {
        None => config.host.groups.keys().copied().collect(),
        Some(value) => {
            let mut join = Vec::new();
            for (i, item) in args::array(&value, "config.join")?.iter().enumerate() {
                let g = args::integer(item, &format!("config.join[{i}]"))?;
                if !config.host.groups.contains_key(&g) {
                    return Err(error(format!(
                        "config.join[{i}] is group {g}, but the groups are {}",
                        group_list(&config)
                    )));
                }
                join.push(g);
            }
            join
        }
    };
    fields.set("followerReads", args::boolean, &mut config.follower_reads)?;
    let timeout = fields
        .read("adminTimeoutMs", args::integer)?
        .unwrap_or(DEFAULT_ADMIN_TIMEOUT_MS)
        .max(1);
    let trace_capacity = fields
        .read("traceCapacity", args::integer)?
        .unwrap_or(DEFAULT_TRACE_CAPACITY)
        .min(100_000) as usize;
    Ok((
        config,
        PageConfig {
            join,
            admin_timeout: timeout,
            trace_capacity,
        },
    ))
}

/// `config.placement`: each group's hosts.
fn placement(value: &JsValue) -> Result<Vec<Vec<NodeId>>, JsError> {
    let groups = args::array(value, "config.placement")?;
    if groups.is_empty() || groups.len() as u64 > MAX_GROUPS {
        return Err(error(format!(
            "config.placement must list 1 to {MAX_GROUPS} groups, not {}",
            groups.len()
        )));
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let what = format!("config.placement[{i}]");
            let hosts = args::array(group, &what)?;
            if hosts.is_empty() || hosts.len() as u64 > MAX_REPLICAS {
                return Err(error(format!(
                    "{what} must list 1 to {MAX_REPLICAS} hosts, not {}",
                    hosts.len()
                )));
            }
            let mut ids: Vec<NodeId> = Vec::new();
            for (j, host) in hosts.iter().enumerate() {
                let id = args::integer(host, &format!("{what}[{j}]"))?;
                if ids.contains(&id) {
                    return Err(error(format!("{what} names host {id} twice")));
                }
                ids.push(id);
            }
            Ok(ids)
        })
        .collect()
}

pub(super) fn group_list(config: &ShardedConfig) -> String {
    let ids: Vec<String> = config.host.groups.keys().map(|g| g.to_string()).collect();
    ids.join(", ")
}

/// The message for a configuration the core refused, in the page's terms:
/// the field of `ShardedConfig` at fault and its value. The core checks
/// the Raft timing of every group; the fields that can fail it are
/// `electionTimeoutMs` and `heartbeatMs` (the rest are checked above).
/// Anything else is worded by the core's `Display`.
pub(super) fn config_error(e: &ShardedSimError) -> String {
    let reason = match e {
        ShardedSimError::Host(HostError::Config(_, ConfigError::ElectionTimeout { min, max })) => {
            format!(
                "config.electionTimeoutMs must be [min, max] with min below max and max at most {MAX_ELECTION_TIMEOUT_MS} ms, not [{min}, {max}]"
            )
        }
        ShardedSimError::Host(HostError::Config(
            _,
            ConfigError::HeartbeatInterval {
                heartbeat,
                election_min,
            },
        )) => format!(
            "config.heartbeatMs must be below the minimum of config.electionTimeoutMs, {election_min} ms, not {heartbeat} (when not given it is {})",
            Config::new(1, [1]).heartbeat_interval
        ),
        other => other.to_string(),
    };
    format!("bad configuration: {reason}")
}
