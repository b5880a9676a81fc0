//! A five-node cluster elects a leader, serves clients, loses its leader,
//! elects another and heals, printed as a readable trace:
//! `cargo run -p distribkv-core --features sim --example leader_crash`.

use distribkv_core::sim::{Sim, SimConfig, Workload};

fn print_new_lines(sim: &Sim, seen: &mut u64, kinds: &[&str]) {
    for line in sim.trace_since(*seen) {
        if kinds.contains(&line.kind) {
            let who = line.endpoint.map(|e| format!("{e}: ")).unwrap_or_default();
            let text = if line.kind == "deliver" || line.kind == "drop" {
                line.text()
            } else {
                format!("{who}{}", line.text())
            };
            println!("{:>7}  {text}", format!("{}", line.at));
        }
        *seen = line.seq;
    }
}

fn main() {
    let mut sim = Sim::new(SimConfig {
        nodes: 5,
        seed: 42,
        trace_capacity: 100_000,
        ..SimConfig::default()
    });
    let mut seen = 0;
    let events = ["role", "crash", "restart"];
    println!("== five nodes start; the first election timeout to fire wins");
    sim.run_for(600);
    print_new_lines(&sim, &mut seen, &["role", "crash", "restart"]);
    let leader = sim.leader().expect("a leader within 600 ms");
    println!("\n== node {leader} leads; three clients write and read");
    sim.set_workload(Workload {
        clients: 3,
        interval: 50,
        keys: 3,
        read_fraction: 0.3,
    })
    .unwrap();
    sim.run_for(500);
    print_new_lines(&sim, &mut seen, &["role", "crash", "restart"]);
    let done = sim.history().iter().filter(|e| e.is_complete()).count();
    println!("{done} client operations completed");
    println!("\n== node {leader} crashes");
    sim.crash(leader).unwrap();
    sim.run_for(1_000);
    print_new_lines(&sim, &mut seen, &events);
    let new_leader = sim.leader().expect("a new leader");
    println!(
        "\n== node {new_leader} leads now; node {leader} restarts from its disk and catches up"
    );
    sim.restart(leader).unwrap();
    sim.set_workload(Workload {
        clients: 0,
        ..Workload::default()
    })
    .unwrap();
    sim.run_until_condition(5_000, |sim| {
        sim.is_converged() && sim.history().iter().all(|e| e.outcome.is_some())
    });
    print_new_lines(&sim, &mut seen, &["role", "crash", "restart"]);
    for replica in sim.replicas() {
        let node = replica.node();
        println!(
            "node {}: {} in term {}, applied {} entries, {} keys",
            node.id(),
            node.role().name(),
            node.term(),
            node.log().applied(),
            replica.store().len()
        );
    }
    let done = sim.history().iter().filter(|e| e.is_complete()).count();
    println!(
        "\n{done} of {} client operations completed",
        sim.history().len()
    );
    match sim.check_linearizability() {
        Ok(_) => println!("history: linearizable"),
        Err(e) => println!("history: {e}"),
    }
    println!(
        "safety checks after every event: {}",
        if sim.violations().is_empty() {
            "no violation"
        } else {
            "VIOLATED"
        }
    );
}
