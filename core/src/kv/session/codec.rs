//! The one layout of a session table in snapshots and moving shards:
//! sessions, then tombstones; and the table rebuilt from it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Session, SessionTable, Tombstones};
use crate::kv::codec::{DecodeError, Decoder, Encoder};
use crate::kv::command::{ClientId, ServiceError};

impl SessionTable {
    /// Writes the sessions (client, latest sequence number, last activity,
    /// opening nonce, result) and the tombstones (oldest first): the one
    /// session layout of every snapshot and moving shard. The caller
    /// writes [`SessionTable::next_sweep`] where its format wants it.
    pub fn encode_into(&self, e: &mut Encoder) {
        e.varint(self.sessions.len() as u64);
        for (client, session) in self.iter() {
            e.varint(*client)
                .varint(session.last_seq)
                .varint(session.last_active)
                .varint(session.nonce);
            encode_result(e, &session.last_result);
        }
        e.varint(self.dropped_order.len() as u64);
        for (key, value) in self.tombstones() {
            e.varint(key).varint(value);
        }
    }

    /// Rebuilds a table of `kind` with `limits` from what [`decode_sessions`] read.
    pub fn restore_with(
        kind: Tombstones,
        limits: SessionLimits,
        next_sweep: u64,
        decoded: DecodedSessions,
    ) -> SessionTable {
        let SessionLimits {
            ttl,
            max_sessions,
            max_dropped,
        } = limits;
        let DecodedSessions {
            sessions,
            tombstones,
        } = decoded;
        let opened_by = sessions
            .iter()
            .filter(|(_, s)| s.nonce != 0)
            .map(|(id, s)| (s.nonce, *id))
            .collect();
        let mut table = SessionTable::with_tombstones(kind, ttl, max_sessions, max_dropped);
        table.sessions = sessions.into_iter().collect();
        table.opened_by = opened_by;
        table.next_sweep = next_sweep;
        for (key, value) in tombstones {
            table.bury(key, value);
        }
        table
    }
}

/// Expiry and capacity of a session table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions idle longer than this (log clock, ms) expire.
    pub ttl: u64,
    /// Most open sessions (at least 1).
    pub max_sessions: usize,
    /// Most tombstones kept.
    pub max_dropped: usize,
}

/// Sessions and tombstones as [`decode_sessions`] read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedSessions {
    /// Sessions by client.
    pub sessions: BTreeMap<ClientId, Session>,
    /// Tombstones, oldest first.
    pub tombstones: Vec<(u64, u64)>,
}

/// Which parts of the session layout a format version has (older
/// key-value snapshots lack the nonces, or the tombstones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLayout {
    /// Each session carries its opening nonce.
    pub nonces: bool,
    /// The tombstones follow the sessions.
    pub tombstones: bool,
}

impl SessionLayout {
    /// Everything [`SessionTable::encode_into`] writes.
    pub const CURRENT: SessionLayout = SessionLayout {
        nonces: true,
        tombstones: true,
    };
}

/// Reads what [`SessionTable::encode_into`] wrote (or, per `layout`, an
/// older key-value snapshot's subset of it).
pub fn decode_sessions(
    d: &mut Decoder,
    layout: SessionLayout,
) -> Result<DecodedSessions, DecodeError> {
    let mut decoded = DecodedSessions::default();
    for _ in 0..d.length()? {
        let client = d.varint()?;
        let last_seq = d.varint()?;
        let last_active = d.varint()?;
        let nonce = if layout.nonces { d.varint()? } else { 0 };
        let last_result = decode_result(d)?;
        decoded.sessions.insert(
            client,
            Session {
                last_seq,
                last_result,
                last_active,
                nonce,
            },
        );
    }
    if layout.tombstones {
        for _ in 0..d.length()? {
            decoded.tombstones.push((d.varint()?, d.varint()?));
        }
    }
    Ok(decoded)
}

/// A recorded result: 0 success; 1 and 2 the value or key too large (size,
/// limit); 3 any other refusal (read back as [`ServiceError::Busy`]); 4 a
/// refusal with its code ([`ServiceError::Unavailable`], the controller's).
fn encode_result(e: &mut Encoder, result: &Result<(), ServiceError>) {
    match result {
        Ok(()) => e.u8(0),
        Err(ServiceError::ValueTooLarge { size, limit }) => {
            e.u8(1).varint(*size as u64).varint(*limit as u64)
        }
        Err(ServiceError::KeyTooLarge { size, limit }) => {
            e.u8(2).varint(*size as u64).varint(*limit as u64)
        }
        Err(ServiceError::Unavailable(code)) => e.u8(4).bytes(code.as_bytes()),
        Err(_) => e.u8(3),
    };
}

fn decode_result(d: &mut Decoder) -> Result<Result<(), ServiceError>, DecodeError> {
    Ok(match d.u8()? {
        0 => Ok(()),
        1 => Err(ServiceError::ValueTooLarge {
            size: d.varint()? as usize,
            limit: d.varint()? as usize,
        }),
        2 => Err(ServiceError::KeyTooLarge {
            size: d.varint()? as usize,
            limit: d.varint()? as usize,
        }),
        3 => Err(ServiceError::Busy),
        4 => {
            let code = d.bytes()?;
            let code =
                core::str::from_utf8(&code).map_err(|_| DecodeError::Invalid("session result"))?;
            Err(ServiceError::Unavailable(String::from(code)))
        }
        _ => return Err(DecodeError::Invalid("session result")),
    })
}
