//! What the metrics cost the step loop when `--metrics-addr` is given:
//!
//! - `metrics/observe_host/groups/3`: a sharded host's update after each
//!   step, for a host holding the controller and 3 groups (24 shards), as
//!   in `scripts/bench-sharded.sh 10 500 0`'s 3-group runs;
//! - `metrics/observe_request`: one client request counted (every answer).
//!
//! Run: `cargo bench -p distribkv-native --bench metrics`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use distribkv_core::shard::host::{Host, HostConfig};
use distribkv_core::time::Instant;
use distribkv_native::server::metrics::Metrics;

fn metrics(c: &mut Criterion) {
    let mut config = HostConfig::new(1, 24, vec![1, 2, 3]);
    config.groups = (1..=3)
        .map(|group| (group, vec![1, 2, 3]))
        .collect::<BTreeMap<_, _>>();
    let host = Host::new(config, 7, Instant::ZERO).expect("a valid host configuration");
    let metrics = Metrics::new();
    let mut group = c.benchmark_group("metrics");
    group.bench_function("observe_host/groups/3", |b| {
        b.iter(|| metrics.observe_host(black_box(&host), black_box(500)));
    });
    group.bench_function("observe_request", |b| {
        b.iter(|| metrics.observe_request(black_box("put"), black_box("ok"), true));
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
