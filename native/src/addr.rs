//! Parsing `--peers` and `--cluster` lists: `HOST:PORT,HOST:PORT,...` where
//! HOST is a name, an IPv4 address or a bracketed IPv6 address.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::transport::ServerAddress;

/// A bad address list.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// The list is empty.
    #[error("the address list is empty")]
    Empty,
    /// One entry is not `HOST:PORT`.
    #[error("{entry:?} is not HOST:PORT")]
    Malformed {
        /// The entry as given.
        entry: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {entry:?}: {reason}")]
    Unresolvable {
        /// The entry as given.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The same address appears twice.
    #[error("{entry:?} is listed twice")]
    Duplicate {
        /// The entry as given.
        entry: String,
    },
}

/// Splits `HOST:PORT` into the host (without IPv6 brackets) and the port.
fn split_host_port(entry: &str) -> Option<(&str, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then_some((host, port))
}

/// Parses and resolves one `HOST:PORT`. The certificate of the server there
/// is checked against HOST (a name or an IP address).
pub fn parse_address(entry: &str) -> Result<ServerAddress, AddressError> {
    let entry = entry.trim();
    let (host, port) = split_host_port(entry).ok_or_else(|| AddressError::Malformed {
        entry: entry.to_string(),
    })?;
    let resolved: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| AddressError::Unresolvable {
            entry: entry.to_string(),
            reason: error.to_string(),
        })?
        .collect();
    // Prefer IPv4 for names like localhost that resolve to both.
    let addr = resolved
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or_else(|| AddressError::Unresolvable {
            entry: entry.to_string(),
            reason: "no address found".into(),
        })?;
    Ok(ServerAddress::with_name(addr, host))
}

/// `HOST:PORT` as the operator wrote it (an IPv6 address in brackets).
pub fn address_text(address: &ServerAddress) -> String {
    match address.server_name.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, address.addr.port()).to_string(),
        Err(_) => format!("{}:{}", address.server_name, address.addr.port()),
    }
}

/// Parses a comma-separated list of `HOST:PORT`, in order.
pub fn parse_address_list(list: &str) -> Result<Vec<ServerAddress>, AddressError> {
    let mut addresses: Vec<ServerAddress> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let address = parse_address(entry)?;
        if addresses.iter().any(|a| a.addr == address.addr) {
            return Err(AddressError::Duplicate {
                entry: entry.to_string(),
            });
        }
        addresses.push(address);
    }
    if addresses.is_empty() {
        return Err(AddressError::Empty);
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order_with_names_kept() {
        let list = parse_address_list("127.0.0.1:10001, localhost:10002,[::1]:10003").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].addr, "127.0.0.1:10001".parse().unwrap());
        assert_eq!(list[1].server_name, "localhost");
        assert_eq!(list[1].addr.port(), 10002);
        assert_eq!(list[2].addr, "[::1]:10003".parse().unwrap());
        assert_eq!(list[2].server_name, "::1");
    }

    /// What a host reports of its peers' addresses (a sharded host's
    /// `Describe`, `status`, `member list`) is parsed back by clients: an
    /// IPv6 address keeps its brackets, or it would not parse.
    #[test]
    fn an_address_written_out_parses_back_to_itself() {
        for entry in ["127.0.0.1:10001", "localhost:10002", "[::1]:10003"] {
            let address = parse_address(entry).unwrap();
            let text = address_text(&address);
            assert_eq!(text, entry);
            let again = parse_address(&text).unwrap();
            assert_eq!(
                (again.addr, again.server_name),
                (address.addr, address.server_name)
            );
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "",
            "nohost",
            "1.2.3.4",
            ":80",
            "::1:80",
            "host:99999",
            "h:x",
        ] {
            assert!(parse_address_list(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_address_list("127.0.0.1:1,127.0.0.1:1"),
            Err(AddressError::Duplicate { .. })
        ));
    }
}
