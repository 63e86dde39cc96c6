//! A real etcd for tests: Debian's `etcd-server` on loopback, with free
//! ports and a temporary data directory, killed and removed on drop.
//! Shared by `master/tests/etcd.rs` and the root crate's `tests/master_ha.rs`
//! (included with `#[path]`).

#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)] // waits for a real process in wall-clock time

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long etcd may take to start answering.
const STARTUP: Duration = Duration::from_secs(15);

/// A running etcd.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    client: SocketAddr,
    /// Its client URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

/// A port nobody listens on now (the OS picks it; a race with another
/// process taking it is retried by [`EtcdServer::start`]).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl EtcdServer {
    /// Starts etcd; panics with what to install if the binary is missing
    /// (a test that needs etcd fails rather than passes without it).
    pub fn start() -> Self {
        match Command::new("etcd").arg("--version").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "`etcd --version` failed ({}): install etcd-server (apt-get install -y etcd-server)",
                output.status
            ),
            Err(e) => panic!("no etcd binary ({e}): install etcd-server (apt-get install -y etcd-server)"),
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start() {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("etcd did not start: {last_error}");
    }

    fn try_start() -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agora-etcd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (client_port, peer_port) = (free_port(), free_port());
        let client = SocketAddr::from(([127, 0, 0, 1], client_port));
        let url = format!("http://{client}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.join("etcd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            // Elects itself quickly; the minimum lease TTL stays ~1 s.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run etcd: {e}"))?;
        let mut server = Self {
            child,
            dir,
            client,
            url,
        };
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("etcd exited ({status}); log: {}", server.log()));
            }
            if server.healthy() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("etcd not healthy after {STARTUP:?}; log: {}", server.log()))
    }

    /// etcd's `/health` says it has a leader and serves.
    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.client, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.client
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.contains("\"health\":\"true\"")
    }

    /// Deletes `key` through etcd's JSON gateway (no `etcdctl` in Debian's
    /// etcd-server package); returns how many keys were deleted.
    pub fn delete(&self, key: &str) -> u64 {
        let body = format!("{{\"key\":\"{}\"}}", base64(key.as_bytes()));
        let mut stream = TcpStream::connect(self.client).expect("connect to etcd");
        let request = format!(
            "POST /v3/kv/deleterange HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.client,
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write to etcd");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read from etcd");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "etcd refused the delete: {response}"
        );
        // `"deleted":"1"` (int64 travels as a string in JSON); absent when 0.
        response
            .split("\"deleted\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Standard base64 with padding (the gateway's encoding of bytes).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
