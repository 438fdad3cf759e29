//! Real etcd members (Debian's `etcd-server`) on 127.0.0.1, for the
//! shared-counter tests: data in a scratch directory, free ports, bounded
//! waits for readiness, every member killed and reaped on drop.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// The etcd binary.
pub const ETCD: &str = "/usr/bin/etcd";
/// The etcdctl binary.
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// True when etcd is installed (scripts/setup.sh installs it).
#[must_use]
pub fn available() -> bool {
    Path::new(ETCD).exists() && Path::new(ETCDCTL).exists()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// Its name (`m0`, `m1`, …).
    pub name: String,
    /// Client port.
    pub client: u16,
    /// Peer port.
    pub peer: u16,
    child: Option<Child>,
}

impl Member {
    /// `http://127.0.0.1:<client>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }
}

/// A cluster of `n` members.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members.
    pub members: Vec<Member>,
    dir: tempfile::TempDir,
}

/// One HTTP exchange with a member (Connection: close), bounded by
/// `timeout`: the status code and body, or `None`.
#[must_use]
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.take(1 << 20).read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl EtcdCluster {
    /// Starts `n` members and waits (bounded) until the cluster is healthy.
    #[must_use]
    pub fn start(n: usize) -> Self {
        let dir = crate::tempdir();
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut c = Self { members, dir };
        for i in 0..n {
            c.spawn(i, "new");
        }
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The data directory of member `i`.
    #[must_use]
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let cluster = self.initial_cluster();
        let data = self.data_dir(i);
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("{}.log", self.members[i].name)),
        )
        .expect("log file");
        let m = &mut self.members[i];
        let child = Command::new(ETCD)
            .env_clear()
            .args([
                "--name",
                &m.name,
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &m.url(),
                "--advertise-client-urls",
                &m.url(),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                state,
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        m.child = Some(child);
    }

    /// Waits until every running member reports health (quorum), bounded.
    pub fn wait_healthy(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            let ok = self.members.iter().filter(|m| m.child.is_some()).all(|m| {
                http(m.client, "GET", "/health", "", Duration::from_millis(500))
                    .is_some_and(|(c, b)| c == 200 && b.contains("\"true\""))
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd not healthy within {limit:?}");
    }

    /// Stops member `i` (SIGKILL, reaped).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a stopped member `i` on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i, "existing");
    }

    /// The index of the current leader, asked of the running members.
    #[must_use]
    pub fn leader(&self) -> Option<usize> {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let Some((200, body)) = http(
                m.client,
                "POST",
                "/v3/maintenance/status",
                "{}",
                Duration::from_secs(1),
            ) else {
                continue;
            };
            let field = |name: &str| {
                body.split(&format!("\"{name}\":\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_string)
            };
            let (Some(me), Some(leader)) = (field("member_id"), field("leader")) else {
                continue;
            };
            if me == leader {
                return self.members.iter().position(|x| x.client == m.client);
            }
        }
        None
    }

    /// The client URLs of all members.
    #[must_use]
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::url).collect()
    }

    /// Puts `key` = `value` through member `i`.
    pub fn put(&self, i: usize, key: &str, value: &str) {
        let body = format!("{{\"key\":\"{}\",\"value\":\"{}\"}}", b64(key), b64(value));
        let r = http(
            self.members[i].client,
            "POST",
            "/v3/kv/put",
            &body,
            Duration::from_secs(5),
        );
        assert!(matches!(r, Some((200, _))), "put: {r:?}");
    }

    /// The value of `key` through member `i` (`None`: absent).
    #[must_use]
    pub fn get(&self, i: usize, key: &str) -> Option<String> {
        let body = format!("{{\"key\":\"{}\"}}", b64(key));
        let (code, text) = http(
            self.members[i].client,
            "POST",
            "/v3/kv/range",
            &body,
            Duration::from_secs(5),
        )?;
        assert_eq!(code, 200, "{text}");
        let v = text.split("\"value\":\"").nth(1)?.split('"').next()?;
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).to_string())
    }

    /// `etcdctl snapshot save` of member `i` into `file`.
    pub fn snapshot_save(&self, i: usize, file: &Path) {
        let st = Command::new(ETCDCTL)
            .env_clear()
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.members[i].url(), "snapshot", "save"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("etcdctl");
        assert!(st.success(), "snapshot save");
    }

    /// One-member clusters only: stops the member, replaces its data with
    /// `etcdctl snapshot restore` of `file`, starts it again.
    pub fn restore_single(&mut self, file: &Path) {
        assert_eq!(self.members.len(), 1);
        self.stop(0);
        let data = self.data_dir(0);
        std::fs::remove_dir_all(&data).expect("remove data");
        let m = &self.members[0];
        let st = Command::new(ETCDCTL)
            .env_clear()
            .env("ETCDCTL_API", "3")
            .arg("snapshot")
            .arg("restore")
            .arg(file)
            .args([
                "--name",
                &m.name,
                "--data-dir",
                &data.display().to_string(),
                "--initial-cluster",
                &self.initial_cluster(),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("etcdctl");
        assert!(st.success(), "snapshot restore");
        self.spawn(0, "existing");
        self.wait_healthy(Duration::from_secs(30));
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
