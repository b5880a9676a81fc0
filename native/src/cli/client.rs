//! The one-shot commands, the line-oriented `client` and `status`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use distribkv_core::kv::{NodeStatus, Operation};

use super::{CliError, ClusterArgs};
use crate::kv_client::{self, KvError, KvSession, KvTransport, SessionTiming};
use crate::tls::CertSet;

/// `client` arguments.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Answer each command with one JSON object instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// One JSON object per line instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// Connects to the cluster named by `args`.
pub fn connect(args: &ClusterArgs) -> Result<Arc<KvTransport>, CliError> {
    let servers = crate::addr::parse_address_list(&args.cluster)?;
    let certs = CertSet::load(&args.certs)?;
    if !certs.has_client_identity() {
        return Err(CliError::Certificates(crate::tls::CertError::Missing {
            path: args.certs.join(crate::tls::CLIENT_CERT_FILE),
        }));
    }
    Ok(Arc::new(kv_client::connect(servers, &certs)?))
}

/// Runs one operation and prints its result: the value of a `get`, `OK` for
/// a write. Returns the exit code: 0, or 1 for a missing key.
pub async fn one_shot(cluster: &ClusterArgs, operation: Operation) -> Result<u8, CliError> {
    kv_client::validate(&operation)?;
    let is_get = !operation.is_write();
    let transport = connect(cluster)?;
    let mut session = KvSession::new(
        transport.clone(),
        SessionTiming::default(),
        crate::transport::random_u64(),
    );
    let result = session.execute(operation).await;
    transport.close().await;
    let mut stdout = std::io::stdout().lock();
    match result? {
        Some(value) => {
            stdout.write_all(&value)?;
            stdout.write_all(b"\n")?;
        }
        None if is_get => return Ok(1),
        None => writeln!(stdout, "OK")?,
    }
    stdout.flush()?;
    Ok(0)
}

/// A command line of `client`, parsed.
fn parse_command(line: &str) -> Result<Operation, String> {
    let line = line.trim_start();
    let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    let (key, value) = match rest.split_once(char::is_whitespace) {
        Some((key, value)) => (key, Some(value)),
        None => (rest, None),
    };
    let key_bytes = || Bytes::copy_from_slice(key.as_bytes());
    let verb_lower = verb.to_ascii_lowercase();
    if !matches!(verb_lower.as_str(), "put" | "append" | "get" | "delete") {
        return Err(format!(
            "unknown command {verb:?} (expected put, append, get or delete)"
        ));
    }
    if key.is_empty() {
        return Err(format!("{verb}: missing KEY"));
    }
    match (verb_lower.as_str(), value) {
        ("put", Some(value)) => Ok(Operation::Put {
            key: key_bytes(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }),
        ("append", Some(value)) => Ok(Operation::Append {
            key: key_bytes(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }),
        ("put" | "append", None) => Err(format!("{verb}: missing VALUE (usage: {verb} KEY VALUE)")),
        ("get", None) => Ok(Operation::Get { key: key_bytes() }),
        ("delete", None) => Ok(Operation::Delete { key: key_bytes() }),
        ("get" | "delete", Some(_)) => Err(format!("{verb}: takes only KEY (usage: {verb} KEY)")),
        _ => unreachable!("the verb was checked above"),
    }
}

/// One answer line of `client`.
enum Answer {
    Done,
    Value(Option<Bytes>),
    Error(String),
}

fn render(answer: &Answer, json: bool) -> String {
    let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
    if json {
        // Written by hand to keep the field order of the contract.
        let quoted = |text: &str| serde_json::Value::from(text).to_string();
        match answer {
            Answer::Done => r#"{"ok":true}"#.into(),
            Answer::Value(Some(value)) => {
                format!(r#"{{"ok":true,"value":{}}}"#, quoted(&text(value)))
            }
            Answer::Value(None) => r#"{"ok":true,"value":null}"#.into(),
            Answer::Error(error) => format!(r#"{{"ok":false,"error":{}}}"#, quoted(error)),
        }
    } else {
        match answer {
            Answer::Done => "OK".into(),
            Answer::Value(Some(value)) => text(value),
            Answer::Value(None) => "(nil)".into(),
            Answer::Error(error) => format!("ERROR {error}"),
        }
    }
}

/// Runs `client`: one answer line per command line, in order, until stdin ends.
pub async fn line_client(args: &ClientArgs) -> Result<u8, CliError> {
    let transport = connect(&args.cluster)?;
    let mut session = KvSession::new(
        transport.clone(),
        SessionTiming::default(),
        crate::transport::random_u64(),
    );
    // Stdin is read on a blocking thread, one line at a time.
    let (lines, mut incoming) = tokio::sync::mpsc::channel::<std::io::Result<String>>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let stop = line.is_err();
            if lines.blocking_send(line).is_err() || stop {
                break;
            }
        }
    });
    let stdout = std::io::stdout();
    while let Some(line) = incoming.recv().await {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match parse_command(&line) {
            Err(error) => Answer::Error(error),
            Ok(operation) => {
                let is_get = !operation.is_write();
                match session.execute(operation).await {
                    Ok(value) if is_get => Answer::Value(value),
                    Ok(_) => Answer::Done,
                    Err(KvError::Certificates(error)) => {
                        return Err(KvError::Certificates(error).into());
                    }
                    Err(error) => Answer::Error(error.to_string()),
                }
            }
        };
        let mut out = stdout.lock();
        writeln!(out, "{}", render(&answer, args.json))?;
        out.flush()?;
    }
    transport.close().await;
    Ok(0)
}

/// A status as one JSON object (camelCase fields): `id`, `addr`, `role`,
/// `term`, `leader` (`null` if unknown), `commitIndex`, `appliedIndex`,
/// `lastIndex`, `durableIndex`, `snapshotIndex`, `keys`, `sessions`, and
/// `fingerprint`: 16 hex digits, a hash of the node's key-value state and
/// client sessions, equal on nodes that applied the same entries (compare it
/// across nodes whose `appliedIndex` is equal). It is a string because JSON
/// numbers lose precision past 2^53 in many readers.
pub fn status_json(status: &NodeStatus, addr: &str) -> serde_json::Value {
    serde_json::json!({
        "id": status.id,
        "addr": addr,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "commitIndex": status.commit_index,
        "appliedIndex": status.applied_index,
        "lastIndex": status.last_index,
        "durableIndex": status.durable_index,
        "snapshotIndex": status.snapshot_index,
        "keys": status.keys,
        "sessions": status.sessions,
        "fingerprint": format!("{:016x}", status.fingerprint),
    })
}

/// Runs `status`: one line per reachable node; unreachable ones are
/// reported on stderr. Fails only if no node answered.
pub async fn status(args: &StatusArgs) -> Result<u8, CliError> {
    let transport = connect(&args.cluster)?;
    let servers = transport.servers().to_vec();
    let mut queries = Vec::new();
    for index in 0..servers.len() {
        let transport = transport.clone();
        queries.push(tokio::spawn(async move {
            kv_client::node_status(&transport, index).await
        }));
    }
    let mut reachable = 0;
    let mut stdout = std::io::stdout().lock();
    for (index, query) in queries.into_iter().enumerate() {
        let addr = format!(
            "{}:{}",
            servers[index].server_name,
            servers[index].addr.port()
        );
        match query.await {
            Ok(Ok(status)) => {
                reachable += 1;
                if args.json {
                    writeln!(stdout, "{}", status_json(&status, &addr))?;
                } else {
                    let leader = status.leader.map_or("none".into(), |l| l.to_string());
                    writeln!(
                        stdout,
                        "node {} {addr} {} term {} leader {leader} commit {} applied {} last {} snapshot {} keys {}",
                        status.id,
                        status.role,
                        status.term,
                        status.commit_index,
                        status.applied_index,
                        status.last_index,
                        status.snapshot_index,
                        status.keys
                    )?;
                }
            }
            Ok(Err(error)) => eprintln!("node {} {addr} unreachable: {error}", index + 1),
            Err(error) => eprintln!("node {} {addr}: {error}", index + 1),
        }
    }
    stdout.flush()?;
    drop(stdout);
    transport.close().await;
    if reachable == 0 {
        return Err(CliError::NoNodeReachable);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_parse() {
        assert_eq!(
            parse_command("put k hello world").unwrap(),
            Operation::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"hello world"),
            }
        );
        assert_eq!(
            parse_command("append k  x").unwrap(),
            Operation::Append {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b" x"),
            }
        );
        assert_eq!(
            parse_command("get k").unwrap(),
            Operation::Get {
                key: Bytes::from_static(b"k")
            }
        );
        assert!(parse_command("get").is_err());
        assert!(parse_command("put k").is_err());
        assert!(parse_command("get k v").is_err());
        assert!(parse_command("frobnicate k").is_err());
    }

    #[test]
    fn answers_render_as_the_contract_says() {
        assert_eq!(render(&Answer::Done, true), r#"{"ok":true}"#);
        assert_eq!(
            render(&Answer::Value(Some(Bytes::from_static(b"v"))), true),
            r#"{"ok":true,"value":"v"}"#
        );
        assert_eq!(
            render(&Answer::Value(None), true),
            r#"{"ok":true,"value":null}"#
        );
        assert_eq!(
            render(&Answer::Error("x".into()), true),
            r#"{"ok":false,"error":"x"}"#
        );
        assert_eq!(render(&Answer::Done, false), "OK");
    }
}
