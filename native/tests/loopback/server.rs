//! One server in-process: a disk that fills up stops it cleanly, and
//! nothing it acknowledged is lost (in-process, so that the storage's fault
//! injector can be armed).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_native::kv_client::{KvCluster, KvError, KvSession, SessionTiming, ValidOperation};
use distribkv_native::server::{self, ServerConfig, ServerError, ValidConfig};
use distribkv_native::storage::{FaultInjector, StorageOptions};
use distribkv_native::tls::{self, CertSet};
use distribkv_native::transport::ServerAddress;

use crate::harness::free_port;

/// Node 1 of a one-node cluster at `port`, listening at `listen` if given
/// (once its folder holds the members, a node listens where they say).
fn config(
    dir: &std::path::Path,
    port: u16,
    listen: Option<u16>,
    faults: FaultInjector,
) -> ValidConfig {
    let mut config = ServerConfig::new(
        1,
        vec![ServerAddress::new(([127, 0, 0, 1], port).into())],
        dir.join("data"),
        dir.join("certs"),
    );
    config.listen = listen.map(|port| ServerAddress::new(([127, 0, 0, 1], port).into()));
    config.replica.snapshot_every = 0;
    config.replica.raft.heartbeat_interval = 20;
    config.replica.raft.election_timeout_min = 100;
    config.replica.raft.election_timeout_max = 200;
    // Zeros written ahead 1 KiB at a time (not 1 MiB), so that the disk
    // filled below is met a few writes later: records only overwrite zeros.
    config.storage = StorageOptions {
        faults,
        preallocate: 1024,
        ..StorageOptions::default()
    };
    config.validate().unwrap()
}

fn put(i: usize) -> ValidOperation {
    ValidOperation::new(Operation::Put {
        key: Bytes::from(format!("key{i}")),
        value: Bytes::from(vec![b'v'; 512]),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_server_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    tls::generate(&dir.path().join("certs"), &[]).unwrap();
    let certs = CertSet::load(&dir.path().join("certs")).unwrap();
    let port = free_port();
    let faults = FaultInjector::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(
        config(dir.path(), port, None, faults.clone()),
        async move {
            let _ = stopped.await;
        },
        |_| {},
    ));

    let servers = vec![ServerAddress::new(([127, 0, 0, 1], port).into())];
    let transport = Arc::new(KvCluster::fixed(servers.clone(), &certs).unwrap());
    let timing = SessionTiming {
        attempt_timeout_ms: 500,
        probe_timeout_ms: 500,
        retry_backoff_ms: 20,
        give_up_after_ms: 3000,
    };
    let mut session = KvSession::new(transport.clone(), timing, 7);
    for i in 0..20 {
        session.execute(put(i)).await.unwrap();
    }
    // The disk fills up a few writes from now.
    faults.fill_disk_after(8 * 1024);
    let mut acknowledged = Vec::new();
    for i in 20..200 {
        match session.execute(put(i)).await {
            Ok(_) => acknowledged.push(i),
            Err(KvError::Unknown(_)) => break,
            Err(other) => panic!("{other}"),
        }
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops by itself")
        .unwrap();
    let error = outcome.unwrap_err();
    assert!(matches!(error, ServerError::StorageFailed(_)), "{error}");
    assert!(error.to_string().contains("nothing acknowledged was lost"));
    drop(stop);

    transport.close().await;
    drop(session);
    drop(transport);

    // Restarted on a healthy disk: every acknowledged write is there. (On a
    // new port, given as the address to listen on since the folder's
    // members keep the first: in-process, the stopped endpoint may hold its
    // UDP port for a few seconds while its last connections drain.)
    let first_port = port;
    let port = free_port();
    let servers = vec![ServerAddress::new(([127, 0, 0, 1], port).into())];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(
        config(dir.path(), first_port, Some(port), FaultInjector::new()),
        async move {
            let _ = stopped.await;
        },
        |_| {},
    ));
    let transport = Arc::new(KvCluster::fixed(servers, &certs).unwrap());
    let mut session = KvSession::new(transport.clone(), timing, 8);
    for i in (0..20).chain(acknowledged.iter().copied()) {
        let value = session
            .execute(
                ValidOperation::new(Operation::Get {
                    key: Bytes::from(format!("key{i}")),
                })
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(value.map(|v| v.len()), Some(512), "key{i}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
