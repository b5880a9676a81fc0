//! `ShardedSimulation` through its JS API, in Node: a reply to a client
//! in flight (`state().inFlight[]` and `message(id)`) comes from the host
//! the client's request went to, in the same host numbering (from 1) as
//! the requests' `to`, and the journal's reply lines (`events()`) name
//! that host too.
//!
//! `cargo test -p distribkv-wasm --target wasm32-unknown-unknown --test sharded_node`
#![cfg(target_arch = "wasm32")]

use std::collections::{BTreeMap, BTreeSet};

use distribkv_wasm::sharded::ShardedSimulation;
use serde_json::{Value, json};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A JS value from JSON-ish Rust data, as JS code would pass it.
fn js(value: Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).expect("valid JSON")
}

/// A returned JS value as JSON, for comparisons and field access.
fn json_of(value: &JsValue) -> Value {
    let text: String = js_sys::JSON::stringify(value).expect("JSON-shaped").into();
    serde_json::from_str(&text).expect("parses")
}

const REQUESTS: [&str; 3] = ["Kv", "Controller", "FollowerRead"];
const REPLIES: [&str; 2] = ["KvReply", "ControllerReply"];

#[test]
fn a_reply_in_flight_comes_from_the_host_its_request_went_to() {
    let mut sim = ShardedSimulation::new(js(json!({ "seed": 4 })))
        .unwrap_or_else(|_| panic!("a default sharded simulation"));
    sim.set_workload(JsValue::TRUE).unwrap();
    // (client endpoint, requestId) -> the host it was sent to; every
    // attempt has its own id. A request the first step sends and delivers
    // at once is never seen in flight: its reply is only checked for being
    // from a host.
    let mut sent: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut matched = BTreeSet::new();
    let mut repliers = BTreeSet::new();
    let mut hosts = 0;
    for _ in 0..3_000 {
        let state = json_of(&sim.state().unwrap());
        hosts = state["hosts"].as_array().unwrap().len() as u64;
        for item in state["inFlight"].as_array().unwrap() {
            let kind = item["kinds"][0].as_str().unwrap_or_default();
            let (is_request, is_reply) = (REQUESTS.contains(&kind), REPLIES.contains(&kind));
            if !is_request && !is_reply {
                continue;
            }
            let id = item["id"].as_u64().unwrap();
            let message = json_of(&sim.message(js(json!(id))).unwrap());
            assert_eq!(
                (&message["from"], &message["to"]),
                (&item["from"], &item["to"]),
                "message({id}) and state().inFlight agree"
            );
            let request_id = message["messages"][0]["requestId"].as_u64().unwrap();
            if is_request {
                let client = item["from"]
                    .as_str()
                    .expect("a request comes from a client");
                let host = item["to"].as_u64().expect("to a host id");
                sent.insert((client.to_string(), request_id), host);
                continue;
            }
            let client = item["to"].as_str().expect("a reply goes to a client");
            let host = item["from"]
                .as_u64()
                .unwrap_or_else(|| panic!("a reply comes from a host id: {item}"));
            assert!((1..=hosts).contains(&host), "{item}");
            if let Some(to) = sent.get(&(client.to_string(), request_id)) {
                assert_eq!(host, *to, "{message}");
                matched.insert(id);
            }
            repliers.insert(host);
        }
        if matched.len() >= 40 && repliers.len() > 1 {
            break;
        }
        sim.step();
    }
    assert!(matched.len() >= 40, "{} replies matched", matched.len());
    assert!(repliers.len() > 1, "{repliers:?}");
    // The event log's reply lines: `<host>->c<client> KvReply #<id> ...`.
    let events = json_of(&sim.events(JsValue::UNDEFINED).unwrap());
    let mut lines = 0;
    for e in events.as_array().unwrap() {
        if !REPLIES.contains(&e["kind"].as_str().unwrap()) {
            continue;
        }
        let text = e["text"].as_str().unwrap();
        let host: u64 = text
            .split_once("->c")
            .and_then(|(host, _)| host.parse().ok())
            .unwrap_or_else(|| panic!("no sender in {text:?}"));
        assert!((1..=hosts).contains(&host), "{text}");
        lines += 1;
    }
    assert!(lines > 0, "reply lines in the journal");
}
