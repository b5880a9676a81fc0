//! What crashed runs of this suite left behind: namespaces and blackhole
//! routes are named after the test process that made them, so a later run
//! removes those whose process is gone, and only those.

use std::sync::Once;

use super::range::{ROUTE_PROTO, is_our_route, route_destination, route_owner};
use super::{delete_namespace, kill_processes_in, namespaces, run};

/// The process id in a namespace name of this suite (`dkf<pid>-...`).
fn owner_of_namespace(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("dkf")?;
    let (pid, tail) = rest.split_once('-')?;
    let tail_ok = tail == "probe" || {
        // <k>-br, <k>-c, <k>-n<i>
        let (k, role) = tail.split_once('-')?;
        k.chars().all(|c| c.is_ascii_digit())
            && (role == "br"
                || role == "c"
                || role
                    .strip_prefix('n')
                    .is_some_and(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_digit())))
    };
    (tail_ok && !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// True if `pid` is a live process of this test suite (a `faults-*` test binary).
fn is_live_run(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("faults"))
}

/// Removes what crashed earlier runs of this suite left behind: namespaces
/// named `dkf<pid>-...` and our blackhole routes whose process `pid` is no
/// longer a live run of this suite. Runs once per process.
pub fn clean_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let own = std::process::id();
        for name in namespaces().unwrap_or_default() {
            let Some(pid) = owner_of_namespace(&name) else {
                continue;
            };
            if pid == own || is_live_run(pid) {
                continue;
            }
            eprintln!(
                "removing network namespace {name}, left by an earlier run (process {pid} is gone)"
            );
            kill_processes_in(&name);
            delete_namespace(&name);
        }
        let routes = run("ip", &["-4", "-o", "route", "show", "table", "all"]).unwrap_or_default();
        for line in routes.lines().filter(|line| is_our_route(line)) {
            let Some(pid) = route_owner(line) else {
                continue;
            };
            if pid == own || is_live_run(pid) {
                continue;
            }
            let Some((address, length)) = route_destination(line) else {
                continue;
            };
            eprintln!("removing route {line:?}, left by an earlier run (process {pid} is gone)");
            let prefix = format!("{address}/{length}");
            let metric = pid.to_string();
            let _ = run(
                "ip",
                &[
                    "route",
                    "del",
                    "blackhole",
                    &prefix,
                    "proto",
                    ROUTE_PROTO,
                    "metric",
                    &metric,
                ],
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_suites_names_and_routes_are_recognised() {
        assert_eq!(owner_of_namespace("dkf4242-1-br"), Some(4242));
        assert_eq!(owner_of_namespace("dkf4242-12-n5"), Some(4242));
        assert_eq!(owner_of_namespace("dkf4242-3-c"), Some(4242));
        assert_eq!(owner_of_namespace("dkf4242-probe"), Some(4242));
        for other in [
            "dkf",
            "dkfx-1-br",
            "dkf4242",
            "dkf4242-1-eth0",
            "dkf4242-1-n",
            "web-1",
        ] {
            assert_eq!(owner_of_namespace(other), None, "{other}");
        }
        assert!(is_our_route(
            "blackhole 198.18.7.0/24 proto 213 metric 4242"
        ));
        assert_eq!(
            route_owner("blackhole 198.18.7.0/24 proto 213 metric 4242"),
            Some(4242)
        );
        assert!(!is_our_route(
            "blackhole 198.18.7.0/24 proto static metric 4242"
        ));
        assert!(!is_our_route("blackhole 10.0.0.0/24 proto 213 metric 4242"));
        assert!(!is_our_route(
            "198.18.7.0/24 via 10.0.0.1 dev eth0 proto 213"
        ));
    }
}
