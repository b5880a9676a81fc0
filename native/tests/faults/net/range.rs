//! The addresses the suite uses and the routes that guard them: one /24 of
//! the test range per run, a blackhole route for it in the machine's own
//! namespace, and the parsing of `ip -o route` lines that tells our routes
//! from everything else.

use std::net::Ipv4Addr;

use super::run;

/// The protocol number of the blackhole routes this suite adds (unassigned
/// in iproute2's table), so that they can be told apart from anything else.
pub const ROUTE_PROTO: &str = "213";

/// The test range: 198.18.0.0/15 (RFC 2544, network benchmarking).
pub(super) const RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// A route's destination in `ip -o route` output: `None` for `default` and
/// for lines that name no IPv4 prefix.
pub(super) fn route_destination(line: &str) -> Option<(Ipv4Addr, u8)> {
    const TYPES: [&str; 10] = [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "nat",
        "anycast",
    ];
    let mut tokens = line.split_whitespace();
    let mut destination = tokens.next()?;
    if TYPES.contains(&destination) {
        destination = tokens.next()?;
    }
    parse_prefix(destination)
}

fn parse_prefix(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, length) = match text.split_once('/') {
        Some((address, length)) => (address, length.parse().ok()?),
        None => (text, 32),
    };
    Some((address.parse().ok()?, length))
}

fn network_bits(address: Ipv4Addr, length: u8) -> u32 {
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(length))
    };
    u32::from(address) & mask
}

/// True if the two prefixes share an address.
fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let shorter = a.1.min(b.1);
    network_bits(a.0, shorter) == network_bits(b.0, shorter)
}

/// True for a route this suite added: a blackhole /24 of the range with our
/// protocol number.
pub(super) fn is_our_route(line: &str) -> bool {
    line.starts_with("blackhole ")
        && line
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["proto", ROUTE_PROTO])
        && route_destination(line).is_some_and(|d| d.1 == 24 && overlaps(d, RANGE))
}

/// The metric (owner process id) of one of our routes.
pub(super) fn route_owner(line: &str) -> Option<u32> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    tokens
        .windows(2)
        .find(|w| w[0] == "metric")
        .and_then(|w| w[1].parse().ok())
}

/// Picks a /24 of the test range that no live run of this suite uses, or
/// refuses if the machine routes or holds any address of the range itself.
pub(super) fn pick_subnet(pid: u32) -> Result<Ipv4Addr, String> {
    let routes = run("ip", &["-4", "-o", "route", "show", "table", "all"])?;
    let mut taken = Vec::new();
    for line in routes.lines() {
        let Some(destination) = route_destination(line) else {
            continue;
        };
        if !overlaps(destination, RANGE) {
            continue;
        }
        if is_our_route(line) {
            taken.push(destination.0);
        } else {
            return Err(format!(
                "this machine already routes part of the test range 198.18.0.0/15 ({line:?}); \
                 the fault tests refuse to run rather than touch it"
            ));
        }
    }
    let addresses = run("ip", &["-4", "-o", "addr", "show"])?;
    for line in addresses.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if let Some(prefix) = tokens
            .windows(2)
            .find(|w| w[0] == "inet")
            .and_then(|w| parse_prefix(w[1]))
            && overlaps((prefix.0, 32), RANGE)
        {
            return Err(format!(
                "this machine has an address in the test range 198.18.0.0/15 ({line:?}); \
                 the fault tests refuse to run rather than touch it"
            ));
        }
    }
    let base = u32::from(RANGE.0);
    (0..512)
        .map(|k| (pid as usize + k) % 512)
        .map(|index| Ipv4Addr::from(base + (index as u32) * 256))
        .find(|subnet| !taken.contains(subnet))
        .ok_or_else(|| "every /24 of 198.18.0.0/15 is in use by other runs".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_lines_parse_to_their_destination() {
        let cases = [
            ("default via 192.0.2.1 dev eth0", None),
            (
                "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2",
                Some(("192.0.2.0", 24)),
            ),
            (
                "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1",
                Some(("127.0.0.1", 32)),
            ),
            (
                "blackhole 198.18.7.0/24 proto 213 metric 4242",
                Some(("198.18.7.0", 24)),
            ),
            ("unreachable default metric 1", None),
        ];
        for (line, expected) in cases {
            let expected = expected.map(|(a, l): (&str, u8)| (a.parse().unwrap(), l));
            assert_eq!(route_destination(line), expected, "{line}");
        }
    }

    #[test]
    fn only_prefixes_sharing_an_address_overlap() {
        let p = |text: &str| parse_prefix(text).unwrap();
        assert!(overlaps(p("198.19.255.0/24"), RANGE));
        assert!(overlaps(p("198.0.0.0/8"), RANGE));
        assert!(!overlaps(p("198.20.0.0/24"), RANGE));
        assert!(!overlaps(p("198.17.255.255"), RANGE));
        assert!(overlaps(p("0.0.0.0/0"), RANGE));
    }
}
