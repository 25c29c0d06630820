//! A counting TCP proxy in front of moto's server: it forwards bytes unchanged and
//! parses the client's side of each connection as HTTP/1.1 requests, counting them by
//! (secret id, operation). Counting on the wire, not inside a library, sees every
//! request a client sends, retries included: the benchmark counts what each cache sends
//! for one secret, and the emulator rotation what the function sends per invocation.
//!
//! The operation is the action of the `X-Amz-Target` header for the JSON-protocol
//! services (Secrets Manager's `secretsmanager.GetSecretValue`, EventBridge's
//! `AWSEvents.PutRule`), and is told from the method and path for EventBridge
//! Scheduler's REST API (`POST /schedules/{name}` is `CreateSchedule`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Requests seen, by secret id (empty for a request that names none) then operation.
pub type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// A running proxy. It stops accepting when the last clone is dropped (or the runtime
/// that started it shuts down).
#[derive(Debug, Clone)]
pub struct CountingProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    counts: Arc<Mutex<Counts>>,
    _listener: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> std::io::Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Mutex::new(Counts::new()));
        let shared = Arc::clone(&counts);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A broken connection only loses its own requests' forwarding; the
                    // SDK sees the error and retries through a new connection.
                    let _ = forward(client, upstream, counts).await;
                });
            }
        });
        Ok(CountingProxy {
            port,
            counts,
            _listener: Arc::new(AbortOnDrop(accept)),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests counted so far for `secret`, by operation.
    pub fn counts_for(&self, secret: &str) -> BTreeMap<String, u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(secret).cloned().unwrap_or_default()
    }

    /// The requests counted so far, whatever they named, by operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = BTreeMap::new();
        for (op, n) in counts.values().flatten() {
            *out.entry(op.clone()).or_default() += n;
        }
        out
    }
}

/// The requests counted between two snapshots, by operation (operations with none left
/// out).
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n.saturating_sub(before.get(op).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn forward(mut client: TcpStream, upstream: u16, counts: Arc<Mutex<Counts>>) -> std::io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream)).await?;
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.split();
    let upstream_to_client = tokio::io::copy(&mut server_read, &mut client_write);
    let client_to_upstream = async {
        let mut parser = RequestParser::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                server_write.shutdown().await?;
                return Ok::<(), std::io::Error>(());
            }
            for (secret, op) in parser.feed(&buf[..n]) {
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                *counts.entry(secret).or_default().entry(op).or_default() += 1;
            }
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let (a, b) = tokio::join!(upstream_to_client, client_to_upstream);
    a?;
    b
}

/// Splits a byte stream into HTTP/1.1 requests (header block, then `content-length`
/// bytes of body) and yields each request's secret id and operation.
#[derive(Debug, Default)]
struct RequestParser {
    pending: Vec<u8>,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut seen = Vec::new();
        loop {
            let Some(end) = find(&self.pending, b"\r\n\r\n") else {
                return seen;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            let length = header(&head, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let body_start = end + 4;
            if self.pending.len() < body_start + length {
                return seen;
            }
            let body = &self.pending[body_start..body_start + length];
            let op = header(&head, "x-amz-target")
                .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
                .unwrap_or_else(|| rest_operation(head.lines().next().unwrap_or_default()));
            let secret = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("SecretId").and_then(|s| s.as_str()).map(secret_name))
                .unwrap_or_default();
            seen.push((secret, op));
            self.pending.drain(..body_start + length);
        }
    }
}

/// The operation of a REST request (EventBridge Scheduler's API) from its request line,
/// `METHOD /path HTTP/1.1`; one of another API is named by its method and first segment.
fn rest_operation(request_line: &str) -> String {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let op = match (method, segments.as_slice()) {
        ("POST", ["schedules", _]) => "CreateSchedule",
        ("GET", ["schedules", _]) => "GetSchedule",
        ("PUT", ["schedules", _]) => "UpdateSchedule",
        ("DELETE", ["schedules", _]) => "DeleteSchedule",
        ("GET", ["schedules"]) => "ListSchedules",
        ("POST", ["schedule-groups", _]) => "CreateScheduleGroup",
        ("GET", ["schedule-groups", _]) => "GetScheduleGroup",
        ("DELETE", ["schedule-groups", _]) => "DeleteScheduleGroup",
        ("GET", ["schedule-groups"]) => "ListScheduleGroups",
        ("POST", ["tags", ..]) => "TagResource",
        ("GET", ["tags", ..]) => "ListTagsForResource",
        ("DELETE", ["tags", ..]) => "UntagResource",
        _ => return format!("{method} /{}", segments.first().unwrap_or(&"")),
    };
    op.to_owned()
}

/// A secret's name from its name or ARN: both libraries send the ARN in some calls
/// (`arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`).
fn secret_name(id: &str) -> String {
    match id.split_once(":secret:") {
        Some((prefix, rest)) if prefix.starts_with("arn:") && rest.len() > 7 => {
            rest[..rest.len() - 7].to_owned()
        }
        _ => id.to_owned(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (case-insensitive) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: &str, secret: &str) -> Vec<u8> {
        let body = format!("{{\"SecretId\":\"{secret}\"}}");
        format!(
            "POST / HTTP/1.1\r\nX-Amz-Target: secretsmanager.{op}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn arns_count_under_the_secret_name() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/a-b-Xy12Zq"),
            "bench/a-b"
        );
        assert_eq!(secret_name("bench/a-b"), "bench/a-b");
    }

    #[test]
    fn rest_requests_are_named_by_method_and_path() {
        let mut parser = RequestParser::default();
        let body = "{\"ScheduleExpression\":\"at(2026-01-01T00:00:00)\"}";
        let mut stream = format!(
            "POST /schedules/ks-abc-swap-1?x=1 HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        stream.extend(b"GET /schedules?ScheduleGroup=keyshift HTTP/1.1\r\n\r\n");
        stream.extend(b"DELETE /schedules/ks-abc-swap-1 HTTP/1.1\r\n\r\n");
        stream.extend(b"PATCH /other/thing HTTP/1.1\r\n\r\n");
        let ops: Vec<String> = parser.feed(&stream).into_iter().map(|(_, op)| op).collect();
        assert_eq!(
            ops,
            [
                "CreateSchedule",
                "ListSchedules",
                "DeleteSchedule",
                "PATCH /other"
            ]
        );
    }

    #[test]
    fn deltas_between_snapshots() {
        let before = BTreeMap::from([("DescribeSecret".to_owned(), 2), ("PutRule".to_owned(), 1)]);
        let after = BTreeMap::from([
            ("DescribeSecret".to_owned(), 5),
            ("PutRule".to_owned(), 1),
            ("GetSecretValue".to_owned(), 1),
        ]);
        assert_eq!(
            delta(&before, &after),
            BTreeMap::from([("DescribeSecret".to_owned(), 3), ("GetSecretValue".to_owned(), 1)])
        );
    }

    #[test]
    fn requests_split_across_reads_are_counted_once_each() {
        let mut stream = request("DescribeSecret", "a");
        stream.extend(request("GetSecretValue", "b"));
        let mut parser = RequestParser::default();
        let mut seen = Vec::new();
        for chunk in stream.chunks(7) {
            seen.extend(parser.feed(chunk));
        }
        assert_eq!(
            seen,
            vec![
                ("a".to_owned(), "DescribeSecret".to_owned()),
                ("b".to_owned(), "GetSecretValue".to_owned())
            ]
        );
    }
}
