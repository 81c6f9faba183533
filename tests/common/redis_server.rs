//! A `redis-server` for the fleet tests and benches: a free loopback port, persistence
//! off, killed when the guard drops (also when a test panics). Included by `#[path]`
//! (it needs the `fleet` feature's `redis` client, which `common/` does not).
#![allow(dead_code)] // the bench uses part of it

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    /// Listening with TLS on `port` (`--tls-port`) and on no plain port.
    tls: bool,
}

impl RedisServer {
    pub fn start(extra: &[&str]) -> RedisServer {
        RedisServer::start_with(extra, false)
    }

    fn start_with(extra: &[&str], tls: bool) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls,
        };
        server.launch();
        server
    }

    /// A server that speaks TLS only, on the port a plain one would use (`--port 0`
    /// turns the plain listener off); `extra` gives the certificate files.
    pub fn start_tls(extra: &[&str]) -> RedisServer {
        let mut args = vec!["--port", "0"];
        args.extend_from_slice(extra);
        RedisServer::start_with(&args, true)
    }

    pub fn launch(&mut self) {
        let port_flag = if self.tls { "--tls-port" } else { "--port" };
        let child = Command::new("redis-server")
            .args([port_flag, &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/fleet.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn address(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}", self.port)
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (with nothing remembered: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // SIGKILL ends a stopped process too; SIGCONT first all the same, so a
            // failed pause test never leaves anything stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
