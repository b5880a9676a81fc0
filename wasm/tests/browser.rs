//! The `Simulation` class in headless Chrome: determinism for a seed, errors
//! for bad arguments, crash / partition / heal behaviour, a client round
//! trip and a clean `check()`; and `ShardedSimulation`: a shard move with a
//! host down, checked, and errors for bad arguments.
//!
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p distribkv-wasm --target wasm32-unknown-unknown`
#![cfg(target_arch = "wasm32")]

use distribkv_wasm::Simulation;
use serde_json::{Value, json};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A JS value from JSON-ish Rust data, as JS code would pass it.
fn js(value: Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).expect("valid JSON")
}

fn n(value: f64) -> JsValue {
    JsValue::from(value)
}

/// A returned JS value as JSON, for comparisons and field access.
fn json_of(value: &JsValue) -> Value {
    let text: String = js_sys::JSON::stringify(value).expect("JSON-shaped").into();
    serde_json::from_str(&text).expect("parses")
}

fn sim(config: Value) -> Simulation {
    Simulation::new(js(config)).unwrap_or_else(|e| panic!("{}", message_of(e)))
}

/// What JS would catch: an `Error` and its message.
fn message_of(error: JsError) -> String {
    let value = JsValue::from(error);
    let error = value
        .dyn_ref::<js_sys::Error>()
        .expect("errors reach JS as Error objects");
    error.message().into()
}

fn state(sim: &Simulation) -> Value {
    json_of(&sim.state(JsValue::UNDEFINED).unwrap())
}

fn history(sim: &Simulation) -> Value {
    json_of(&sim.history(JsValue::UNDEFINED).unwrap())
}

fn leaders(state: &Value) -> Vec<(u64, u64)> {
    state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|node| node["up"] == true && node["role"] == "leader")
        .map(|node| (node["id"].as_u64().unwrap(), node["term"].as_u64().unwrap()))
        .collect()
}

/// The leader with the highest term, if any; `state().leader` must say the same.
fn leader(sim: &Simulation) -> Option<u64> {
    let st = state(sim);
    let highest = leaders(&st)
        .into_iter()
        .max_by_key(|&(_, term)| term)
        .map(|(id, _)| id);
    assert_eq!(st["leader"].as_u64(), highest, "state().leader");
    highest
}

/// Runs in steps of 10 ms until a leader exists (at most `limit` ms).
fn wait_for_leader(sim: &mut Simulation, limit: u64) -> Option<u64> {
    for _ in 0..limit / 10 {
        if let Some(id) = leader(sim) {
            return Some(id);
        }
        sim.run_for(n(10.0)).unwrap();
    }
    leader(sim)
}

/// The same calls at the same virtual times on any instance.
fn script(sim: &mut Simulation) {
    sim.set_workload(js(
        json!({ "clients": 3, "intervalMs": 40, "keys": 3, "readFraction": 0.3 }),
    ))
    .unwrap();
    sim.run_for(n(800.0)).unwrap();
    let leader = leader(sim).expect("a leader after 800 ms");
    sim.crash(n(leader as f64)).unwrap();
    sim.put(js(json!("x")), js(json!("1")), JsValue::UNDEFINED)
        .unwrap();
    sim.run_for(n(600.0)).unwrap();
    sim.partition(js(json!([[1, 2], [3, 4, 5]]))).unwrap();
    sim.set_drop_rate(n(0.1)).unwrap();
    sim.set_duplicate_rate(n(0.05)).unwrap();
    sim.set_latency(n(2.0), n(30.0)).unwrap();
    sim.run_for(n(700.5)).unwrap();
    sim.heal();
    sim.set_drop_rate(n(0.0)).unwrap();
    sim.restart(n(leader as f64)).unwrap();
    sim.cut_link(n(1.0), n(2.0)).unwrap();
    sim.append(js(json!("x")), js(json!("2")), n(2.0)).unwrap();
    for _ in 0..25 {
        sim.step().unwrap();
    }
    sim.restore_link(n(1.0), n(2.0)).unwrap();
    let _ = sim.trigger_election(n(3.0));
    sim.run_until(n(3_500.0)).unwrap();
    let _ = sim.transfer_leadership(n(4.0));
    sim.snapshot(n(5.0)).unwrap();
    sim.get(js(json!("x")), JsValue::UNDEFINED).unwrap();
    sim.run_for(n(1_000.0)).unwrap();
}

#[test]
fn same_seed_and_calls_give_the_same_run() {
    let config = json!({ "nodes": 5, "seed": 42, "snapshotEvery": 40 });
    let mut a = sim(config.clone());
    let mut b = sim(config);
    script(&mut a);
    script(&mut b);
    assert_eq!(state(&a), state(&b));
    assert_eq!(history(&a), history(&b));
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(
        json_of(&a.events(JsValue::UNDEFINED).unwrap()),
        json_of(&b.events(JsValue::UNDEFINED).unwrap())
    );
    assert!(history(&a).as_array().unwrap().len() > 20);
    // Another seed is another run.
    let mut c = sim(json!({ "nodes": 5, "seed": 43, "snapshotEvery": 40 }));
    script(&mut c);
    assert_ne!(a.trace_hash(), c.trace_hash());
}

#[test]
fn bad_arguments_throw_errors_and_the_instance_keeps_working() {
    for (config, expected) in [
        (json!({ "nodes": 0 }), "nodes must be 1 to 9"),
        (json!({ "nodes": 12 }), "nodes must be 1 to 9"),
        (
            json!({ "nodes": "five" }),
            "config.nodes must be a non-negative integer",
        ),
        (json!({ "nodez": 3 }), "unknown field \"nodez\""),
        (
            json!({ "dropRate": 1.5 }),
            "drop rate must be between 0 and 1",
        ),
        (
            json!({ "latencyMs": [20, 5] }),
            "config.latencyMs must have min <= max",
        ),
        (
            json!({ "electionTimeoutMs": 150 }),
            "config.electionTimeoutMs must be an array",
        ),
        (json!([1, 2]), "config must be an object"),
    ] {
        let error = Simulation::new(js(config.clone()))
            .err()
            .unwrap_or_else(|| panic!("{config} was accepted"));
        let message = message_of(error);
        assert!(message.contains(expected), "{config}: {message:?}");
    }

    let mut sim = sim(json!({ "nodes": 5, "seed": 7 }));
    sim.run_for(n(1_000.0)).unwrap();
    let leader = leader(&sim).expect("a leader");
    let checks: Vec<(Result<(), JsError>, &str)> = vec![
        (sim.crash(n(6.0)), "unknown node 6 (node ids are 1 to 5)"),
        (sim.crash(n(0.0)), "unknown node 0"),
        (
            sim.crash(js(json!("2"))),
            "node id must be a non-negative integer, not \"2\"",
        ),
        (sim.crash(n(1.5)), "not 1.5"),
        (sim.crash(n(-1.0)), "not -1"),
        (sim.crash(JsValue::UNDEFINED), "not undefined"),
        (sim.restart(n(1.0)), "node 1 is already up"),
        (
            sim.partition(js(json!([[1, 2], [2, 3]]))),
            "node 2 is in two groups",
        ),
        (sim.partition(js(json!([[1, 9]]))), "unknown node 9"),
        (
            sim.partition(js(json!([1, 2]))),
            "partition group 0 must be an array",
        ),
        (
            sim.partition(js(json!("1,2|3"))),
            "partition expects an array of arrays",
        ),
        (sim.cut_link(n(1.0), n(7.0)), "unknown node 7"),
        (
            sim.set_drop_rate(n(1.5)),
            "drop rate must be between 0 and 1",
        ),
        (
            sim.set_drop_rate(n(-0.1)),
            "drop rate must be between 0 and 1",
        ),
        (
            sim.set_drop_rate(js(json!("0.1"))),
            "drop rate must be a finite number",
        ),
        (
            sim.set_duplicate_rate(n(2.0)),
            "duplicate rate must be between 0 and 1",
        ),
        (
            sim.set_latency(n(30.0), n(10.0)),
            "latency range 30..10 is empty",
        ),
        (sim.trigger_election(n(8.0)), "unknown node 8"),
        (sim.snapshot(n(8.0)), "unknown node 8"),
        (sim.transfer_leadership(n(9.0)), "unknown node 9"),
        (
            sim.set_workload(js(json!({ "clients": 2, "readFraction": 3 }))),
            "read fraction must be between 0 and 1",
        ),
        (
            sim.set_workload(js(json!({ "client": 2 }))),
            "unknown field \"client\"",
        ),
        (
            sim.run_for(js(json!("soon"))).map(drop),
            "ms must be a non-negative number",
        ),
        (
            sim.run_until(n(f64::NAN)).map(drop),
            "t must be a non-negative number",
        ),
        (
            sim.put(n(1.0), js(json!("v")), JsValue::UNDEFINED)
                .map(drop),
            "key must be a string",
        ),
        (
            sim.put(js(json!("k")), JsValue::NULL, JsValue::UNDEFINED)
                .map(drop),
            "value must be a string",
        ),
        (
            sim.get(js(json!("k")), n(0.0)).map(drop),
            "client must be 1 to 100",
        ),
        (
            sim.get(js(json!("k")), n(1000.0)).map(drop),
            "client must be 1 to 100",
        ),
        (
            sim.drop_message(js(json!("a"))).map(drop),
            "message id must be a non-negative integer",
        ),
        (
            sim.state(js(json!({ "tail": 2 }))).map(drop),
            "unknown field \"tail\"",
        ),
        (
            sim.state(js(json!({ "logTail": -2 }))).map(drop),
            "state options.logTail must be a non-negative integer",
        ),
        (
            sim.events(js(json!("x"))).map(drop),
            "sinceSeq must be a non-negative integer",
        ),
    ];
    for (result, expected) in checks {
        let message = message_of(result.expect_err(expected));
        assert!(
            message.contains(expected),
            "expected {expected:?}, got {message:?}"
        );
    }
    // Still the same healthy cluster.
    assert_eq!(self::leader(&sim), Some(leader));
    sim.crash(n(leader as f64)).unwrap();
    let message = message_of(sim.crash(n(leader as f64)).unwrap_err());
    assert_eq!(message, format!("node {leader} is down"));
    assert!(wait_for_leader(&mut sim, 2_000).is_some());
    let op = sim
        .put(js(json!("k")), js(json!("v")), JsValue::UNDEFINED)
        .unwrap();
    sim.run_for(n(1_000.0)).unwrap();
    assert_eq!(history(&sim)[op as usize - 1]["status"], "ok");
    assert!(json_of(&sim.check(JsValue::UNDEFINED).unwrap())["ok"] == true);
}

#[test]
fn a_leader_survives_crash_partition_and_heal() {
    let mut sim = sim(json!({ "nodes": 5, "seed": 11 }));
    let first = wait_for_leader(&mut sim, 1_000).expect("a leader within 1 s");

    // Crash the leader: another node takes over.
    sim.crash(n(first as f64)).unwrap();
    let second = wait_for_leader(&mut sim, 2_000).expect("a new leader within 2 s");
    assert_ne!(second, first);
    let crashed = state(&sim)["nodes"][first as usize - 1].clone();
    assert_eq!(crashed["up"], false);
    assert_eq!(crashed["role"], "follower");
    assert_eq!(crashed["leader"], Value::Null);
    sim.restart(n(first as f64)).unwrap();
    sim.run_for(n(500.0)).unwrap();

    // The leader and one follower in a minority: no leader there for good,
    // and one in the majority.
    let leader = leader(&sim).expect("still a leader");
    let buddy = leader % 5 + 1;
    let majority: Vec<u64> = (1..=5).filter(|&id| id != leader && id != buddy).collect();
    sim.partition(js(json!([[leader, buddy], majority])))
        .unwrap();
    sim.run_for(n(2_000.0)).unwrap();
    let st = state(&sim);
    assert_eq!(st["links"]["partition"], json!([[leader, buddy], majority]));
    let now_leading = leaders(&st);
    assert!(
        now_leading.iter().all(|(id, _)| majority.contains(id)),
        "the minority still has a leader: {now_leading:?}"
    );
    assert_eq!(
        now_leading.len(),
        1,
        "one leader in the majority: {now_leading:?}"
    );
    let op = sim
        .put(js(json!("p")), js(json!("1")), JsValue::UNDEFINED)
        .unwrap();
    sim.run_for(n(1_000.0)).unwrap();
    assert_eq!(history(&sim)[op as usize - 1]["status"], "ok");

    // Heal: one leader, everyone on its term, logs and state machines equal.
    sim.heal();
    sim.run_for(n(2_000.0)).unwrap();
    let st = state(&sim);
    assert_eq!(st["links"], json!({ "cut": [], "partition": null }));
    let leading = leaders(&st);
    assert_eq!(leading.len(), 1, "{leading:?}");
    let term = leading[0].1;
    for node in st["nodes"].as_array().unwrap() {
        assert_eq!(node["term"], term, "node {} on another term", node["id"]);
        assert_eq!(node["commitIndex"], st["nodes"][0]["commitIndex"]);
        assert_eq!(node["kv"], st["nodes"][0]["kv"]);
        assert_eq!(node["kv"]["p"], "1");
    }
    assert_eq!(json_of(&sim.check(JsValue::UNDEFINED).unwrap())["ok"], true);
}

#[test]
fn a_client_puts_and_gets() {
    let mut sim = sim(json!({ "nodes": 3, "seed": 5 }));
    wait_for_leader(&mut sim, 1_000).expect("a leader");
    let put = sim
        .put(js(json!("x")), js(json!("1")), JsValue::UNDEFINED)
        .unwrap();
    let append = sim.append(js(json!("x")), js(json!("2")), n(1.0)).unwrap();
    let get = sim.get(js(json!("x")), n(1.0)).unwrap();
    let missing = sim.get(js(json!("nope")), n(2.0)).unwrap();
    assert_eq!((put, append, get, missing), (1.0, 2.0, 3.0, 4.0));
    let pending = history(&sim);
    assert_eq!(pending[2]["status"], "pending");
    assert_eq!(pending[2]["completedAt"], Value::Null);
    sim.run_for(n(1_000.0)).unwrap();
    let h = history(&sim);
    for op in h.as_array().unwrap() {
        assert_eq!(op["status"], "ok", "{op}");
        assert!(op["completedAt"].as_u64().unwrap() >= op["invokedAt"].as_u64().unwrap());
    }
    assert_eq!(h[0]["kind"], "put");
    assert_eq!(h[0]["value"], "1");
    assert_eq!(h[1]["kind"], "append");
    assert_eq!(h[2]["kind"], "get");
    assert_eq!(h[2]["output"], "12");
    assert_eq!(h[2]["value"], Value::Null);
    assert_eq!(h[3]["output"], Value::Null);
    assert_eq!(h[3]["client"], 2);
    let clients = json_of(&sim.clients().unwrap());
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert_eq!(clients[0]["busy"], false);
    let delete = sim.delete(js(json!("x")), JsValue::UNDEFINED).unwrap();
    sim.run_for(n(500.0)).unwrap();
    assert_eq!(history(&sim)[delete as usize - 1]["status"], "ok");
    for node in state(&sim)["nodes"].as_array().unwrap() {
        assert_eq!(node["kv"], json!({}), "node {}", node["id"]);
    }
}

#[test]
fn check_is_clean_on_a_normal_run_and_state_has_every_field() {
    let mut sim = sim(json!({ "nodes": 5, "seed": 3, "snapshotEvery": 30 }));
    sim.set_workload(js(
        json!({ "clients": 3, "intervalMs": 50, "keys": 4, "readFraction": 0.3 }),
    ))
    .unwrap();
    sim.run_for(n(3_000.0)).unwrap();
    let check = json_of(&sim.check(JsValue::UNDEFINED).unwrap());
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["violations"], json!([]));
    assert_eq!(check["safety"], json!([]));
    assert_eq!(check["linearizability"]["ok"], true);
    assert_eq!(check["linearizability"]["decided"], true);
    assert!(
        check["linearizability"]["text"]
            .as_str()
            .unwrap()
            .starts_with("linearizable: ")
    );

    let st = json_of(&sim.state(js(json!({ "logTail": 4 }))).unwrap());
    assert_eq!(st["now"], 3_000);
    let node = &st["nodes"][0];
    for field in [
        "id",
        "up",
        "role",
        "term",
        "votedFor",
        "leader",
        "commitIndex",
        "appliedIndex",
        "snapshotIndex",
        "lastIndex",
        "durableIndex",
        "electionDeadline",
        "log",
        "kv",
        "progress",
    ] {
        assert!(node.get(field).is_some(), "node state lacks {field}");
    }
    assert!(
        node["snapshotIndex"].as_u64().unwrap() > 0,
        "snapshots every 30 entries"
    );
    for node in st["nodes"].as_array().unwrap() {
        assert!(node["log"].as_array().unwrap().len() <= 4);
    }
    let leader = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["role"] == "leader")
        .expect("a leader");
    let progress = leader["progress"]
        .as_array()
        .expect("the leader's progress");
    assert_eq!(progress.len(), 4);
    assert!(
        progress
            .iter()
            .all(|p| ["probe", "replicate", "snapshot"].contains(&p["state"].as_str().unwrap()))
    );
    let in_flight = st["inFlight"].as_array().unwrap();
    assert!(!in_flight.is_empty());
    let packet = &in_flight[0];
    for field in ["id", "from", "to", "kind", "sentAt", "deliverAt", "summary"] {
        assert!(packet.get(field).is_some(), "inFlight lacks {field}");
    }
    let detail = json_of(&sim.message(n(packet["id"].as_f64().unwrap())).unwrap());
    assert_eq!(detail["id"], packet["id"]);
    assert_eq!(detail["kind"], packet["kind"]);
    assert!(sim.drop_message(n(packet["id"].as_f64().unwrap())).unwrap());
    assert!(!sim.drop_message(n(packet["id"].as_f64().unwrap())).unwrap());
    assert!(
        sim.message(n(packet["id"].as_f64().unwrap()))
            .unwrap()
            .is_null()
    );

    let events = json_of(&sim.events(n(0.0)).unwrap());
    let events = events.as_array().unwrap();
    assert!(!events.is_empty());
    let last_seq = events.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(json_of(&sim.events(n(last_seq as f64)).unwrap()), json!([]));
    let next = sim
        .next_event_at()
        .as_f64()
        .expect("something is scheduled");
    let stepped = json_of(&sim.step().unwrap());
    assert_eq!(stepped["at"].as_f64().unwrap(), next);
    assert!(stepped.get("kind").is_some() && stepped.get("text").is_some());
    assert!(sim.trace_hash().parse::<u64>().is_ok());
}

// ---- ShardedSimulation ----------------------------------------------------

fn sharded(config: Value) -> distribkv_wasm::sharded::ShardedSimulation {
    distribkv_wasm::sharded::ShardedSimulation::new(js(config))
        .unwrap_or_else(|e| panic!("{}", message_of(e)))
}

#[test]
fn sharded_simulation_moves_a_shard_and_stays_checked() {
    let mut sim =
        sharded(json!({ "seed": 3, "hosts": 6, "groups": 2, "replicas": 3, "shards": 4 }));
    sim.run_for(n(2000.0)).unwrap();
    let state = json_of(&sim.state().unwrap());
    assert_eq!(state["config"]["num"], 1);
    let owner = state["shards"][0]["owner"].as_u64().unwrap();
    let to = if owner == 100 { 101 } else { 100 };
    let op = sim.put(JsValue::from("x"), JsValue::from("1")).unwrap();
    sim.move_shard(n(0.0), n(to as f64)).unwrap();
    sim.crash(n(1.0)).unwrap();
    sim.run_for(n(4000.0)).unwrap();
    let state = json_of(&sim.state().unwrap());
    assert_eq!(state["shards"][0]["owner"], to);
    assert_eq!(state["shards"][0]["status"], "serving");
    assert_eq!(state["hosts"][0]["up"], false);
    let history = json_of(&sim.history(JsValue::UNDEFINED).unwrap());
    assert_eq!(history[op as usize - 1]["status"], "ok");
    let check = json_of(&sim.check(JsValue::UNDEFINED).unwrap());
    assert_eq!(check["ok"], true, "{check}");
}

#[test]
fn sharded_simulation_rejects_bad_arguments_with_errors() {
    let err = distribkv_wasm::sharded::ShardedSimulation::new(js(json!({ "hosts": 0 })))
        .err()
        .map(message_of)
        .unwrap();
    assert!(err.contains("config.hosts must be 1 to 32"), "{err}");
    let mut sim = sharded(json!({}));
    let err = message_of(sim.crash(n(9.0)).unwrap_err());
    assert!(err.contains("unknown host 9"), "{err}");
    let err = message_of(sim.move_shard(n(1.0), n(5.0)).unwrap_err());
    assert!(err.contains("unknown group 5"), "{err}");
    assert_eq!(sim.run_for(n(100.0)).unwrap(), 100.0);
}

#[test]
fn sharded_simulation_shows_and_drops_a_message_and_reads_its_journal() {
    let mut sim = sharded(json!({ "seed": 4 }));
    sim.set_workload(JsValue::TRUE).unwrap();
    sim.run_for(n(2000.0)).unwrap();
    let state = json_of(&sim.state().unwrap());
    let item = &state["inFlight"][0];
    let id = item["id"].as_u64().expect("an id");
    let message = json_of(&sim.message(n(id as f64)).unwrap());
    assert_eq!(message["id"], id);
    assert_eq!(message["deliverAt"], item["deliverAt"]);
    assert_eq!(
        message["messages"].as_array().unwrap().len(),
        item["kinds"].as_array().unwrap().len()
    );
    assert!(sim.drop_message(n(id as f64)).unwrap());
    assert!(sim.message(n(id as f64)).unwrap().is_null());
    assert!(!sim.drop_message(n(id as f64)).unwrap());
    let events = json_of(&sim.events(JsValue::UNDEFINED).unwrap());
    let events = events.as_array().unwrap();
    assert!(events.iter().any(|e| e["kind"] == "drop"));
    assert!(events.len() <= 500, "the newest 500 at most");
    assert!(events.iter().any(|e| e["kind"] == "AppendEntries"));
    let err = message_of(sim.message(JsValue::from("x")).unwrap_err());
    assert!(err.contains("message id"), "{err}");
}
