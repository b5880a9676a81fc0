//! QUIC transport between nodes and from clients.
