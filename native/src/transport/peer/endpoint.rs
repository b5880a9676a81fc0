//! The QUIC endpoint of a node: its socket, its TLS configurations, and
//! connection ids and stateless resets that let a restarted node tell the
//! peers of its previous incarnation that their connections are gone.

use std::sync::Arc;

use super::{PeerTransportConfig, TransportError};
use crate::tls::CertSet;

/// Binds the UDP socket of `config.listen` and makes the endpoint on it
/// (serving with the node certificate); returns it with the configuration
/// the node dials its peers with.
pub(super) fn bind(
    config: &PeerTransportConfig,
    certs: &CertSet,
) -> Result<(quinn::Endpoint, quinn::ClientConfig), TransportError> {
    let (server_config, dial_config) = configs(&config.settings, certs)?;

    let bind_error = |source| TransportError::Bind {
        addr: config.listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(config.listen).map_err(bind_error)?;
    // The key depends on the address really bound (not on a port 0 asked
    // for), so a restart on the same address derives the same key.
    let bound = socket.local_addr().map_err(bind_error)?;
    let reset_key = certs.stateless_reset_key(bound.to_string().as_bytes())?;
    let mut endpoint_config = quinn::EndpointConfig::new(reset_key);
    endpoint_config.cid_generator(|| Box::new(RandomConnectionIds));
    let endpoint = quinn::Endpoint::new(
        endpoint_config,
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(bind_error)?;
    Ok((endpoint, dial_config))
}

/// The configurations the node serves with and dials its peers with.
pub(super) fn configs(
    settings: &crate::transport::TransportSettings,
    certs: &CertSet,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TransportError> {
    let transport = settings.quic_transport_config();
    let mut server_config = certs.server_config()?;
    server_config.transport_config(transport.clone());
    let mut dial_config = certs.node_client_config()?;
    dial_config.transport_config(transport);
    Ok((server_config, dial_config))
}

/// Connection ids of 8 random bytes, accepted as "possibly ours" without
/// a check. Quinn's default generator tags its ids with a per-process random
/// key and silently drops packets whose id lacks the tag; a restarted node
/// would then drop the packets of its previous incarnation's connections
/// instead of answering them with a stateless reset. (Packets of unknown ids
/// draw at most one reset per 20 ms, each smaller than the packet that
/// caused it, so this cannot amplify traffic.)
struct RandomConnectionIds;

/// Length of the connection ids this node issues.
const CONNECTION_ID_LENGTH: usize = 8;

impl quinn::ConnectionIdGenerator for RandomConnectionIds {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&crate::transport::random_u64().to_le_bytes())
    }

    fn cid_len(&self) -> usize {
        CONNECTION_ID_LENGTH
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}
