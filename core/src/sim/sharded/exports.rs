//! Backup probes: a shard's export ([`HostRequest::Export`]) asked of a
//! replica of a group, recorded in the history as a get of every workload
//! key in the shard, invoked when the request is sent and completed when
//! the answer comes, so the linearizability check covers exports as it
//! covers reads: an export taken before the read index, or from a group
//! that no longer serves the shard, shows as a stale read.

use super::*;
use crate::shard::group::decode_shard;
use crate::shard::host::HostRequest;
use crate::shard::{ShardId, shard_of};

/// The client id of the export probes, in the history and the network.
pub(super) const EXPORTER: u64 = 1 << 40;

/// An export asked for and not answered yet.
#[derive(Clone, Debug)]
pub(super) struct ExportProbe {
    request: u64,
    shard: ShardId,
    /// The workload keys in the shard, with their reads' history ids.
    reads: Vec<(Bytes, u64)>,
}

impl ShardedSim {
    /// Asks for a random shard's export: of a random replica of the group
    /// that owns it in the latest configuration (four times in five), or of
    /// any group (whose refusal is checked not to answer). A probe still
    /// unanswered is given up first: its reads' outcomes are unknown.
    pub fn probe_export(&mut self) {
        self.give_up_export();
        let shards = self.config.host.shards;
        let shard = self.rng.index(shards as usize) as ShardId;
        let owner = self
            .slots
            .values()
            .filter_map(|s| s.host.as_ref()?.controller())
            .map(|c| c.latest())
            .max_by_key(|c| c.num)
            .and_then(|c| c.shards.get(shard as usize).copied())
            .filter(|g| *g != 0);
        let groups: Vec<GroupId> = self.config.host.groups.keys().copied().collect();
        let group = match owner {
            Some(g) if !self.rng.chance(0.2) => g,
            _ => groups[self.rng.index(groups.len())],
        };
        let Some(servers) = self.config.host.groups.get(&group) else {
            return;
        };
        let to = servers[self.rng.index(servers.len())];
        let now = self.now.as_millis();
        let reads = (0..self.config.keys.max(1))
            .map(|i| Bytes::from(format!("k{i}")))
            .filter(|key| shard_of(key, shards) == shard)
            .map(|key| {
                let id = self
                    .history
                    .invoke(EXPORTER, key.to_vec(), check::OpKind::Get, now);
                (key, id)
            })
            .collect();
        self.next_export += 1;
        let request = self.next_export;
        self.export = Some(ExportProbe {
            request,
            shard,
            reads,
        });
        let (from, dest) = (Endpoint::Client(EXPORTER), Endpoint::Node(to));
        if !self.network.can_reach(from, dest) {
            return;
        }
        if let Some((first, _)) = self.network.transit(&mut self.rng) {
            self.schedule(
                first,
                Event::Request {
                    to,
                    from: EXPORTER,
                    request: HostRequest::Export {
                        id: request,
                        group,
                        shard,
                        at: None,
                        offset: 0,
                    },
                },
            );
        }
    }

    /// Gives up the probe in flight, if any: its reads' outcomes are unknown.
    pub fn give_up_export(&mut self) {
        if let Some(probe) = self.export.take() {
            for (_, id) in probe.reads {
                let _ = self.history.fail_unknown(id);
            }
        }
    }

    /// Exports answered in full (every key of the shard read from them).
    pub fn exports_served(&self) -> u64 {
        self.exports_served
    }

    /// An answer to the exporter: the probe's reads complete with the
    /// exported values, or (a refusal) stay unknown.
    pub(super) fn export_reply(&mut self, reply: HostReply) {
        let HostReply::Export { id, result } = reply else {
            return;
        };
        if self.export.as_ref().is_none_or(|p| p.request != id) {
            // A duplicate, or the answer to a probe given up.
            return;
        }
        let probe = self.export.take().expect("checked");
        let chunk = match result {
            Ok(chunk) if chunk.shard == probe.shard && chunk.offset == 0 => chunk,
            Ok(chunk) => {
                self.violations.push(format!(
                    "export of shard {} answered with shard {} from byte {}",
                    probe.shard, chunk.shard, chunk.offset
                ));
                return;
            }
            Err(_) => {
                self.export = Some(probe);
                self.give_up_export();
                return;
            }
        };
        if chunk.total != chunk.data.len() as u64 {
            // Larger than a chunk: not with the sweep's values.
            self.export = Some(probe);
            self.give_up_export();
            return;
        }
        let data = match decode_shard(chunk.data, &self.config.host.limits) {
            Ok((data, _sessions)) => data,
            Err(e) => {
                self.violations.push(format!(
                    "export of shard {} does not decode: {e}",
                    probe.shard
                ));
                return;
            }
        };
        let now = self.now.as_millis();
        for (key, id) in probe.reads {
            let value = data.get(&key).map(|v| v.to_vec());
            if let Err(e) = self.history.complete(id, now, value) {
                self.violations.push(format!("history: {e:?}"));
            }
        }
        self.exports_served += 1;
    }
}
