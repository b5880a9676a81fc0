//! The one-shot commands and the line-oriented `client`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use distribkv_core::kv::Operation;
use serde::Serialize;

use super::{CliError, ClusterArgs, ReadArgs};
use crate::kv_client::{KvCluster, KvError, KvSession, SessionTiming, ValidOperation};
use crate::shard::client::{ShardTiming, ShardedCluster, ShardedSession};
use crate::tls::CertSet;

/// `client` arguments.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Read routing.
    #[command(flatten)]
    pub reads: ReadArgs,
    /// Answer each command with one JSON object instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// A connected cluster: a single Raft group, or a sharded one whose
/// operations are routed by key ([`crate::shard::client`]).
#[derive(Debug, Clone)]
pub enum Connected {
    /// A single-group cluster.
    Single(Arc<KvCluster>),
    /// A sharded cluster.
    Sharded(Arc<ShardedCluster>),
}

impl Connected {
    /// A session of its own, with the default timing.
    pub fn session(&self) -> AnySession {
        let seed = crate::transport::random_u64();
        match self {
            Connected::Single(cluster) => AnySession::Single(KvSession::new(
                cluster.clone(),
                SessionTiming::default(),
                seed,
            )),
            Connected::Sharded(cluster) => AnySession::Sharded(ShardedSession::new(
                cluster.clone(),
                ShardTiming::default(),
                seed,
            )),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Connected::Single(cluster) => cluster.close().await,
            Connected::Sharded(cluster) => cluster.transport.close().await,
        }
    }
}

/// A client session of either kind of cluster.
#[derive(Debug)]
pub enum AnySession {
    /// Single group.
    Single(KvSession),
    /// Sharded: routed by key.
    Sharded(ShardedSession),
}

impl AnySession {
    /// Lets any node serve reads: any member of a single group
    /// ([`KvSession::set_follower_reads`]), any replica of the owning
    /// group of a sharded cluster ([`ShardedSession::set_follower_reads`]).
    pub fn set_follower_reads(&mut self, on: bool) {
        match self {
            AnySession::Single(session) => session.set_follower_reads(on),
            AnySession::Sharded(session) => session.set_follower_reads(on),
        }
    }

    /// Runs one operation to completion (see [`KvSession::execute`]).
    pub async fn execute(&mut self, operation: ValidOperation) -> Result<Option<Bytes>, KvError> {
        match self {
            AnySession::Single(session) => session.execute(operation).await,
            AnySession::Sharded(session) => session.run(operation.operation().clone()).await,
        }
    }
}

/// Loads the client certificates of `args`.
pub fn client_certs(args: &ClusterArgs) -> Result<CertSet, CliError> {
    let certs = CertSet::load(&args.certs)?;
    if !certs.has_client_identity() {
        return Err(CliError::Certificates(crate::tls::CertError::Missing {
            path: args.certs.join(crate::tls::CLIENT_CERT_FILE),
        }));
    }
    Ok(certs)
}

/// Connects to the cluster named by `args`. A sharded cluster is
/// recognised by its answer ([`crate::shard::client::detect`]); otherwise
/// every member of the single group's configuration, whichever of them
/// `--cluster` lists ([`crate::kv_client::discover`], and re-discovered when a leader hint names a node added since: [`KvCluster`]).
pub async fn connect(args: &ClusterArgs) -> Result<Connected, CliError> {
    let servers = crate::addr::parse_address_list(&args.cluster)?;
    let certs = client_certs(args)?;
    if let Some(cluster) = crate::shard::client::detect(&servers, &certs).await? {
        return Ok(Connected::Sharded(Arc::new(cluster)));
    }
    Ok(Connected::Single(Arc::new(
        KvCluster::connect(servers, &certs).await?,
    )))
}

/// Runs one operation and prints its result: the value of a `get`, `OK` for
/// a write. Returns the exit code: 0, or 1 for a missing key.
pub async fn one_shot(
    cluster: &ClusterArgs,
    reads: ReadArgs,
    operation: Operation,
) -> Result<u8, CliError> {
    let operation = ValidOperation::new(operation)?;
    let is_get = !operation.operation().is_write();
    let cluster = connect(cluster).await?;
    let mut session = cluster.session();
    session.set_follower_reads(reads.follower_reads);
    let result = session.execute(operation).await;
    cluster.close().await;
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

/// An answer of `client --json`: `{"ok":true}`, `{"ok":true,"value":"..."}`,
/// `{"ok":true,"value":null}` or `{"ok":false,"error":"..."}`, fields in
/// this order.
#[derive(Serialize)]
struct JsonAnswer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn render(answer: &Answer, json: bool) -> String {
    let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
    if json {
        let answer = match answer {
            Answer::Done => JsonAnswer {
                ok: true,
                value: None,
                error: None,
            },
            Answer::Value(value) => JsonAnswer {
                ok: true,
                value: Some(value.as_ref().map(text)),
                error: None,
            },
            Answer::Error(error) => JsonAnswer {
                ok: false,
                value: None,
                error: Some(error.clone()),
            },
        };
        // Invariant: a struct of booleans and strings always serializes.
        serde_json::to_string(&answer).expect("an answer serializes")
    } else {
        match answer {
            Answer::Done => "OK".into(),
            Answer::Value(Some(value)) => text(value),
            Answer::Value(None) => "(nil)".into(),
            Answer::Error(error) => format!("ERROR {error}"),
        }
    }
}

/// Runs one command line in `session`: its answer, or a certificate error
/// (which ends `client`: every later command would fail the same way).
async fn answer(session: &mut AnySession, line: &str) -> Result<Answer, KvError> {
    let operation = match parse_command(line) {
        Ok(operation) => operation,
        Err(error) => return Ok(Answer::Error(error)),
    };
    let is_get = !operation.is_write();
    let result = match ValidOperation::new(operation) {
        Ok(operation) => session.execute(operation).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(value) if is_get => Ok(Answer::Value(value)),
        Ok(_) => Ok(Answer::Done),
        Err(error @ KvError::Certificates(_)) => Err(error),
        Err(error) => Ok(Answer::Error(error.to_string())),
    }
}

/// A line of `client`'s input: the command, or why it is not one.
type CommandLine = Result<String, String>;

/// The longest command line read whole: the largest key and value with
/// room for the command's name and spaces. A longer line could be no valid
/// command; it is skipped to its end rather than held in memory.
const MAX_LINE_BYTES: usize =
    distribkv_core::kv::MAX_KEY_BYTES + distribkv_core::kv::MAX_VALUE_BYTES + 64;

/// The next line of `input` without its line ending, `None` at the end. A
/// line that is not UTF-8, or longer than [`MAX_LINE_BYTES`], is an error
/// for that line only: it is answered, and the lines after it are read on.
fn next_line(input: &mut impl BufRead) -> std::io::Result<Option<CommandLine>> {
    let mut bytes = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 2; // and its "\r\n"
    if std::io::Read::take(&mut *input, limit).read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') && bytes.len() as u64 == limit {
        let mut length = bytes.len() as u64;
        drop(bytes);
        length += skip_line(input)?;
        return Ok(Some(Err(format!(
            "the line is {length} bytes or more, longer than any command \
             (keys are at most {} bytes, values at most {} bytes)",
            distribkv_core::kv::MAX_KEY_BYTES,
            distribkv_core::kv::MAX_VALUE_BYTES
        ))));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(Some(String::from_utf8(bytes).map_err(|error| {
        format!(
            "the line is not UTF-8 (invalid byte at offset {})",
            error.utf8_error().valid_up_to()
        )
    })))
}

/// Reads `input` up to and including the next line ending (or its end)
/// without keeping it; how many bytes that was.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        input.consume(used);
        skipped += used as u64;
        if done {
            return Ok(skipped);
        }
    }
}

/// Runs `client`: one answer line per command line, in order, until stdin ends.
pub async fn line_client(args: &ClientArgs) -> Result<u8, CliError> {
    let cluster = connect(&args.cluster).await?;
    let mut session = cluster.session();
    session.set_follower_reads(args.reads.follower_reads);
    // Stdin is read on a blocking thread, one line at a time.
    let (lines, mut incoming) = tokio::sync::mpsc::channel::<std::io::Result<CommandLine>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let sent = match next_line(&mut stdin) {
                Ok(None) => break,
                Ok(Some(line)) => lines.blocking_send(Ok(line)),
                Err(error) => {
                    let _ = lines.blocking_send(Err(error));
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let stdout = std::io::stdout();
    while let Some(line) = incoming.recv().await {
        let answer = match line? {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => answer(&mut session, &line).await?,
            Err(error) => Answer::Error(error),
        };
        let mut out = stdout.lock();
        writeln!(out, "{}", render(&answer, args.json))?;
        out.flush()?;
    }
    cluster.close().await;
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
    fn a_line_that_is_not_utf8_is_answered_and_the_next_ones_read() {
        let mut input = std::io::Cursor::new(b"put a 1\r\nput b \xff\xfe\nget a\nlast".to_vec());
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("put a 1".into())));
        let error = next_line(&mut input).unwrap().unwrap().unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("get a".into())));
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("last".into())));
        assert_eq!(next_line(&mut input).unwrap(), None);
    }

    #[test]
    fn a_line_longer_than_any_command_is_answered_and_skipped() {
        use std::io::Read as _;
        // The largest command is read whole.
        let key = "k".repeat(distribkv_core::kv::MAX_KEY_BYTES);
        let value = "v".repeat(distribkv_core::kv::MAX_VALUE_BYTES);
        let largest = format!("append {key} {value}");
        let mut input = std::io::Cursor::new(format!("{largest}\r\nget a\n").into_bytes());
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok(largest)));
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("get a".into())));
        // A line of 64 MiB is skipped to its end, not kept, and the next
        // line is read.
        let huge = std::io::repeat(b'x').take(64 << 20);
        let input = b"put a 1\n"
            .chain(huge)
            .chain(&b"\nget a\n"[..])
            .chain(&b"y"[..]);
        let mut input = std::io::BufReader::new(input);
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("put a 1".into())));
        let error = next_line(&mut input).unwrap().unwrap().unwrap_err();
        assert!(error.contains("longer than any command"), "{error}");
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("get a".into())));
        assert_eq!(next_line(&mut input).unwrap(), Some(Ok("y".into())));
        assert_eq!(next_line(&mut input).unwrap(), None);
        // A last line without an ending, too long.
        let mut input = std::io::BufReader::new(std::io::repeat(b'x').take(3 << 20));
        assert!(next_line(&mut input).unwrap().unwrap().is_err());
        assert_eq!(next_line(&mut input).unwrap(), None);
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
