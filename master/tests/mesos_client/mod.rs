//! A Mesos v1 HTTP API client written from the specification only (HTTP/1.1,
//! chunked transfer coding, RecordIO, the JSON of `scheduler.proto`), with
//! raw sockets and `serde_json::Value`: it shares no code with the server,
//! so the tests check the wire, not our own translation.

#![allow(dead_code, unreachable_pub)]

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long the client waits for anything before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

async fn read_line(reader: &mut BufReader<OwnedReadHalf>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("read a line");
    line.trim_end_matches(['\r', '\n']).to_owned()
}

async fn read_head(reader: &mut BufReader<OwnedReadHalf>) -> Head {
    let status_line = read_line(reader).await;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader).await;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Head { status, headers }
}

/// One chunk of a chunked body; `None` after the last (zero-size) chunk.
async fn read_chunk(reader: &mut BufReader<OwnedReadHalf>) -> Option<Vec<u8>> {
    let size_line = read_line(reader).await;
    let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
        .unwrap_or_else(|_| panic!("not a chunk size: {size_line:?}"));
    if size == 0 {
        // Trailers, then the empty line.
        while !read_line(reader).await.is_empty() {}
        return None;
    }
    let mut chunk = vec![0; size];
    reader.read_exact(&mut chunk).await.expect("read a chunk");
    let crlf = read_line(reader).await;
    assert!(crlf.is_empty(), "chunk not followed by CRLF");
    Some(chunk)
}

async fn read_body(reader: &mut BufReader<OwnedReadHalf>, head: &Head) -> Vec<u8> {
    if head.chunked() {
        let mut body = Vec::new();
        while let Some(chunk) = read_chunk(reader).await {
            body.extend(chunk);
        }
        body
    } else if let Some(len) = head.header("content-length") {
        let mut body = vec![0; len.parse().expect("a length")];
        reader.read_exact(&mut body).await.expect("read the body");
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body).await.expect("read the body");
        body
    }
}

fn request_bytes(method: &str, path: &str, addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A keep-alive connection for calls, reused for many requests.
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, writer) = stream.into_split();
        Self {
            addr,
            reader: BufReader::new(read),
            writer,
        }
    }

    pub async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let bytes = request_bytes(method, path, self.addr, headers, body);
        tokio::time::timeout(WAIT, async {
            self.writer.write_all(&bytes).await.expect("write the request");
            let head = read_head(&mut self.reader).await;
            let body = read_body(&mut self.reader, &head).await;
            Response {
                status: head.status,
                headers: head.headers,
                body,
            }
        })
        .await
        .expect("a response in time")
    }

    /// POSTs a JSON call to the scheduler endpoint with a stream id.
    pub async fn call(&mut self, stream_id: &str, call: &Value) -> Response {
        self.request(
            "POST",
            "/api/v1/scheduler",
            &[("Content-Type", "application/json"), ("Mesos-Stream-Id", stream_id)],
            call.to_string().as_bytes(),
        )
        .await
    }
}

/// One request on a fresh connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Connection::open(addr).await.request(method, path, headers, body).await
}

/// A SUBSCRIBE's event stream: chunks decoded, then RecordIO records.
pub struct EventStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<OwnedReadHalf>,
    _writer: OwnedWriteHalf,
    pending: Vec<u8>,
    ended: bool,
}

impl EventStream {
    /// Sends SUBSCRIBE; a non-200 answer comes back whole as `Err`.
    pub async fn subscribe(addr: SocketAddr, call: &Value, headers: &[(&str, &str)]) -> Result<Self, Response> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, mut writer) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut all = vec![("Content-Type", "application/json"), ("Accept", "application/json")];
        all.extend_from_slice(headers);
        let bytes = request_bytes("POST", "/api/v1/scheduler", addr, &all, call.to_string().as_bytes());
        writer.write_all(&bytes).await.expect("write SUBSCRIBE");
        let head = tokio::time::timeout(WAIT, read_head(&mut reader))
            .await
            .expect("a response head in time");
        if head.status != 200 {
            let body = read_body(&mut reader, &head).await;
            return Err(Response {
                status: head.status,
                headers: head.headers,
                body,
            });
        }
        assert!(head.chunked(), "the event stream is chunked: {:?}", head.headers);
        Ok(Self {
            status: head.status,
            headers: head.headers,
            reader,
            _writer: writer,
            pending: Vec::new(),
            ended: false,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn stream_id(&self) -> String {
        self.header("Mesos-Stream-Id")
            .expect("a Mesos-Stream-Id header")
            .to_owned()
    }

    /// Takes one record out of `pending` if it holds a whole one.
    fn record(&mut self) -> Option<Vec<u8>> {
        let newline = self.pending.iter().position(|&b| b == b'\n')?;
        let len: usize = std::str::from_utf8(&self.pending[..newline])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a RecordIO length: {:?}", &self.pending[..newline]));
        assert!(len > 0, "RecordIO records are never empty");
        if self.pending.len() < newline + 1 + len {
            return None;
        }
        let record = self.pending[newline + 1..newline + 1 + len].to_vec();
        self.pending.drain(..newline + 1 + len);
        Some(record)
    }

    /// The next event, or `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(record) = self.record() {
                return Some(serde_json::from_slice(&record).expect("each record is JSON"));
            }
            if self.ended {
                assert!(self.pending.is_empty(), "stream ended inside a record");
                return None;
            }
            match tokio::time::timeout(WAIT, read_chunk(&mut self.reader))
                .await
                .expect("an event in time")
            {
                Some(chunk) => self.pending.extend(chunk),
                None => self.ended = true,
            }
        }
    }

    /// The next event that is not a HEARTBEAT.
    pub async fn next_non_heartbeat(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event["type"] != "HEARTBEAT" {
                return Some(event);
            }
        }
    }

    /// Whether the server ended the stream (reads until the end; heartbeats
    /// and other events before it are skipped).
    pub async fn ends(&mut self) -> bool {
        while self.next().await.is_some() {}
        true
    }
}

/// A SUBSCRIBE call for a new framework.
pub fn subscribe_call(name: &str, extra: Value) -> Value {
    let mut info =
        serde_json::json!({"user": "nobody", "name": name, "roles": ["*"], "capabilities": [{"type": "MULTI_ROLE"}]});
    if let (Some(info), Some(extra)) = (info.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            info.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}})
}
