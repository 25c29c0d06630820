//! A counting TCP proxy in front of moto's server: it forwards bytes unchanged and
//! parses the client's side of each connection as HTTP/1.1 requests, counting them by
//! (secret id, operation). Counting on the wire, not inside either library, is what
//! makes the "AWS calls per hour" figures comparable: every request either cache makes
//! passes through here, retries included.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Requests seen, by secret id then operation name (`DescribeSecret`, ...).
pub type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// A running proxy; it stops when the runtime that started it shuts down.
#[derive(Debug, Clone)]
pub struct CountingProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    counts: Arc<Mutex<Counts>>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> std::io::Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Mutex::new(Counts::new()));
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A broken connection only loses its own requests' forwarding; the
                    // SDK sees the error and retries through a new connection.
                    let _ = forward(client, upstream, counts).await;
                });
            }
        });
        Ok(CountingProxy { port, counts })
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
                .unwrap_or_else(|| "<no x-amz-target>".to_owned());
            let secret = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("SecretId").and_then(|s| s.as_str()).map(secret_name))
                .unwrap_or_default();
            seen.push((secret, op));
            self.pending.drain(..body_start + length);
        }
    }
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
