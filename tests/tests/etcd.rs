//! Shared counters (`[counters] store = "etcd"`) end to end: the built
//! module through the real libpam on several "hosts" (one World each:
//! its own key store copy, statedir and config), all pointing at real
//! etcd members started here on 127.0.0.1 (Debian's etcd-server,
//! installed by scripts/setup.sh).

use std::fs;
use std::path::Path;

use pam_yubiotp::store::CounterStore;
use pam_yubiotp::store::etcd::encode;
use pam_yubiotp::store::shared::journal_dir;
use yubiotp_core::Counter;
use yubiotp_tests::{RunOpts, TestKey, World, code, is_root};
use yubiotp_testsupport::etcd::{self, EtcdCluster};
use yubiotp_testsupport::{Behavior, CertKind, Config, MockServer, TestPki};

const PREFIX: &str = "/yubiotp/counters/";

fn skip() -> bool {
    if !is_root() || !etcd::available() {
        eprintln!("skipped: needs root and etcd-server/etcd-client (scripts/setup.sh)");
        return true;
    }
    false
}

/// One host: alice mapped to `key`, local mode, the given `[counters]`.
fn host(key: &TestKey, counters: &str) -> World {
    let mut w = World::new();
    w.add_user("alice", 2001);
    w.add_key(key, Counter::new(1, 0));
    w.write_authfile(&format!("alice:{}\n", key.id));
    w.write_config(&format!(
        "mode = \"local\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n[counters]\n{counters}"
    ));
    w.simple_service("");
    w
}

fn endpoints(urls: &[String]) -> String {
    let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!("store = \"etcd\"\nendpoints = [{}]\n", quoted.join(", "))
}

fn auth(w: &World, otp: &str) -> yubiotp_tests::Run {
    w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            ..RunOpts::default()
        },
    )
}

fn local_value(w: &World, key: &TestKey) -> Counter {
    CounterStore::open(&w.state).unwrap().read(&key.id).unwrap()
}

fn shared_value(c: &EtcdCluster, i: usize, key: &TestKey) -> Option<String> {
    c.get(i, &format!("{PREFIX}{}", key.id))
}

/// The store holds `key`'s current counter.
fn assert_shared_is(c: &EtcdCluster, key: &TestKey) {
    assert_eq!(shared_value(c, 0, key), Some(encode(key.counter)));
}

fn journaled(w: &World) -> usize {
    let dir = journal_dir(&w.state);
    fs::read_dir(&dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".state"))
            .count()
    })
}

/// Every host presents `otp` at the same moment (each driver waits for
/// `go`); `meanwhile` runs once they are released. Their PAM codes.
fn present_at_once(hosts: &[World], otp: &str, go: &Path, mut meanwhile: impl FnMut()) -> Vec<i32> {
    let opts = RunOpts {
        answers: vec![otp.into()],
        confdir: true,
        wait_for: Some(go.to_path_buf()),
        ..RunOpts::default()
    };
    let children: Vec<_> = hosts
        .iter()
        .map(|w| w.spawn("yubiotp-test", "alice", &opts))
        .collect();
    fs::write(go, b"").unwrap();
    meanwhile();
    children.into_iter().map(|c| c.finish().auth()).collect()
}

#[test]
fn one_otp_on_five_hosts_exactly_one_success_200_rounds() {
    if skip() {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let mut key = TestKey::new(7);
    let hosts: Vec<World> = (0..5)
        .map(|_| host(&key, &endpoints(&cluster.endpoints())))
        .collect();
    let sync = yubiotp_testsupport::tempdir();
    for round in 0..200 {
        let otp = key.next();
        let results = present_at_once(
            &hosts,
            &otp,
            &sync.path().join(format!("go-{round}")),
            || {},
        );
        let ok = results.iter().filter(|c| **c == code::SUCCESS).count();
        assert_eq!(ok, 1, "round {round}: exactly one success: {results:?}");
        assert!(
            results
                .iter()
                .all(|c| *c == code::SUCCESS || *c == code::AUTH_ERR),
            "round {round}: the others are replays: {results:?}"
        );
    }
    assert_shared_is(&cluster, &key);
    // Every host that saw the OTP refuses it again, and so does the store.
    for w in &hosts {
        let again = key.otp_at(key.counter);
        auth(w, &again).assert_refused(code::AUTH_ERR);
    }
}

/// A stopped leader, lost quorum and recovery, with `deny` on one host and
/// `local` on another (each its own key, so their counters are separate).
#[test]
fn three_members_leader_loss_quorum_loss_and_recovery() {
    if skip() {
        return;
    }
    let mut cluster = EtcdCluster::start(3);
    let mut kd = TestKey::new(11);
    let mut kl = TestKey::new(12);
    let base = endpoints(&cluster.endpoints());
    let deny = host(&kd, &format!("{base}unavailable = \"deny\"\ntimeout = 2\n"));
    let local = host(
        &kl,
        &format!("{base}unavailable = \"local\"\ntimeout = 2\n"),
    );

    for w_k in [(&deny, &mut kd), (&local, &mut kl)] {
        let (w, k) = w_k;
        let r = auth(w, &k.next());
        assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    }

    // Stop the leader: the others elect a new one.
    let leader = cluster.leader().expect("a leader");
    cluster.stop(leader);
    cluster.wait_healthy(std::time::Duration::from_secs(30));
    for w_k in [(&deny, &mut kd), (&local, &mut kl)] {
        let (w, k) = w_k;
        let r = auth(w, &k.next());
        assert_eq!(
            r.auth(),
            code::SUCCESS,
            "after leader loss: {}",
            r.everything()
        );
    }

    // Stop a second member: no quorum.
    let second = (0..3).find(|i| *i != leader).unwrap();
    cluster.stop(second);
    for _ in 0..3 {
        let r = auth(&deny, &kd.next());
        r.assert_refused(code::AUTHINFO_UNAVAIL);
    }
    let mut accepted_local = Vec::new();
    for _ in 0..3 {
        let otp = kl.next();
        let r = auth(&local, &otp);
        assert_eq!(
            r.auth(),
            code::SUCCESS,
            "local keeps going: {}",
            r.everything()
        );
        assert!(r.everything().contains("degraded"), "{}", r.everything());
        accepted_local.push(otp);
    }
    assert_eq!(journaled(&local), 1, "one journal entry (max-merged)");
    // No OTP is accepted twice by the same host.
    for otp in &accepted_local {
        auth(&local, otp).assert_refused(code::AUTH_ERR);
    }

    // Recovery: the journal drains on the next contact.
    cluster.restart(leader);
    cluster.restart(second);
    cluster.wait_healthy(std::time::Duration::from_secs(30));
    let last_local = kl.counter;
    let r = auth(&local, &kl.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(journaled(&local), 0, "journal drained: {}", r.everything());
    assert!(last_local < kl.counter);
    assert_eq!(local_value(&local, &kl), kl.counter);
    let r = auth(&deny, &kd.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    for otp in &accepted_local {
        auth(&local, otp).assert_refused(code::AUTH_ERR);
    }
}

#[test]
fn journal_push_reaches_the_other_hosts() {
    if skip() {
        return;
    }
    let mut cluster = EtcdCluster::start(1);
    let mut key = TestKey::new(13);
    let base = endpoints(&cluster.endpoints());
    let a = host(
        &key,
        &format!("{base}unavailable = \"local\"\ntimeout = 1\n"),
    );
    let b = host(
        &key,
        &format!("{base}unavailable = \"local\"\ntimeout = 1\n"),
    );
    let r = auth(&a, &key.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    cluster.stop(0);
    let offline = key.next();
    assert_eq!(auth(&a, &offline).auth(), code::SUCCESS);
    assert_eq!(journaled(&a), 1);
    cluster.restart(0);
    cluster.wait_healthy(std::time::Duration::from_secs(30));
    assert_eq!(auth(&a, &key.next()).auth(), code::SUCCESS);
    assert_eq!(journaled(&a), 0);
    // b never saw `offline`, but the store has a newer value now.
    auth(&b, &offline).assert_refused(code::AUTH_ERR);
}

#[test]
fn store_rolled_back_still_refuses_a_replay_on_a_host_that_saw_it() {
    if skip() {
        return;
    }
    let mut cluster = EtcdCluster::start(1);
    let mut key = TestKey::new(14);
    let w = host(&key, &endpoints(&cluster.endpoints()));
    assert_eq!(auth(&w, &key.next()).auth(), code::SUCCESS);
    let snap = yubiotp_testsupport::tempdir();
    let file = snap.path().join("snap.db");
    cluster.snapshot_save(0, &file);
    let old = shared_value(&cluster, 0, &key);
    let newer = key.next();
    assert_eq!(auth(&w, &newer).auth(), code::SUCCESS);
    assert_ne!(shared_value(&cluster, 0, &key), old);
    cluster.restore_single(&file);
    assert_eq!(shared_value(&cluster, 0, &key), old, "rolled back");
    let r = auth(&w, &newer);
    r.assert_refused(code::AUTH_ERR);
    // A newer OTP still works and moves the store forward again.
    assert_eq!(auth(&w, &key.next()).auth(), code::SUCCESS);
}

fn assert_unavailable_cleanly(r: &yubiotp_tests::Run) {
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert_eq!(r.threads.0, r.threads.1, "no thread left in the host");
    assert_eq!(r.fds.0, r.fds.1, "no fd left in the host");
    assert_eq!(r.children, "none", "no child left");
}

fn against(behavior: Behavior, extra: &str) -> yubiotp_tests::Run {
    let server = MockServer::start(Config::new(behavior)).unwrap();
    let mut key = TestKey::new(15);
    let w = host(
        &key,
        &format!("{}timeout = 1\n{extra}", endpoints(&[server.url_root()])),
    );
    auth(&w, &key.next())
}

trait Root {
    fn url_root(&self) -> String;
}

impl Root for MockServer {
    fn url_root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }
}

#[test]
fn hanging_endpoint_is_unavailable_within_the_deadline() {
    if skip() {
        return;
    }
    assert_unavailable_cleanly(&against(Behavior::Hang, ""));
    // Also with `local`: a hang before the write is "unreachable", so
    // the local counters decide, but a garbage reply is never success
    // under `deny`.
}

#[test]
fn garbage_and_huge_replies_are_unavailable() {
    if skip() {
        return;
    }
    assert_unavailable_cleanly(&against(Behavior::Garbage, ""));
    assert_unavailable_cleanly(&against(Behavior::HugeBody(4 << 20), ""));
    assert_unavailable_cleanly(&against(Behavior::Http(500), ""));
    assert_unavailable_cleanly(&against(Behavior::Body(b"{\"kvs\": 5}".to_vec()), ""));
}

#[test]
fn untrusted_certificate_is_unavailable() {
    if skip() {
        return;
    }
    let pki = TestPki::generate().unwrap();
    let tls = pki.identity(CertKind::UnknownCa).server_config().unwrap();
    let server = MockServer::start(Config::new(Behavior::Ok).tls(tls)).unwrap();
    let mut key = TestKey::new(16);
    let w = host(
        &key,
        &format!(
            "timeout = 1\n{}",
            endpoints(&[format!("https://127.0.0.1:{}", server.port())])
        ),
    );
    let ca = pki.write_ca(&w.etc).unwrap();
    // The test CA is trusted, but the server's issuer is not.
    let text = fs::read_to_string(w.config()).unwrap();
    yubiotp_tests::write_mode(
        &w.config(),
        format!("{text}cafile = \"{}\"\n", ca.display()).as_bytes(),
        0o600,
    );
    let r = auth(&w, &key.next());
    assert_unavailable_cleanly(&r);
    assert!(r.everything().contains("TLS"), "{}", r.everything());
}

#[test]
fn wrong_credentials_are_unavailable() {
    if skip() {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let port = cluster.members[0].client;
    let call = |path: &str, body: &str| {
        let r = etcd::http(port, "POST", path, body, std::time::Duration::from_secs(5));
        assert!(matches!(r, Some((200, _))), "{path}: {r:?}");
    };
    // etcd's root user and role, then auth on.
    call(
        "/v3/auth/user/add",
        "{\"name\":\"root\",\"password\":\"rootpw\"}",
    );
    call(
        "/v3/auth/user/grant",
        "{\"user\":\"root\",\"role\":\"root\"}",
    );
    call("/v3/auth/enable", "{}");
    let mut key = TestKey::new(17);
    let base = endpoints(&cluster.endpoints());
    let bad = host(
        &key,
        &format!("{base}username = \"root\"\npassword = \"wrong\"\n"),
    );
    let r = auth(&bad, &key.next());
    assert_unavailable_cleanly(&r);
    assert!(
        !r.everything().contains("wrong\""),
        "the password is never shown"
    );
    let good = host(
        &key,
        &format!("{base}username = \"root\"\npassword = \"rootpw\"\n"),
    );
    let r = auth(&good, &key.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
}

/// A hybrid host on the fleet's shared counters, with the cloud at
/// `server`.
fn hybrid_host(key: &TestKey, cluster: &EtcdCluster, server: &MockServer) -> World {
    let w = host(key, &endpoints(&cluster.endpoints()));
    let toml = format!(
        "mode = \"hybrid\"\nauthfile = \"{}\"\n[cloud]\nid = 1\nkey = \"{}\"\nurls = [\"{}\"]\n[local]\nkeystore = \"{}\"\nstatedir = \"{}\"\n[counters]\n{}",
        w.authfile().display(),
        yubiotp_testsupport::TEST_KEY_B64,
        server.url(),
        w.keystore().display(),
        w.state.display(),
        endpoints(&cluster.endpoints()),
    );
    yubiotp_tests::write_mode(&w.config(), toml.as_bytes(), 0o600);
    w
}

#[test]
fn hybrid_cloud_ok_advances_the_shared_counters() {
    if skip() {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let server =
        MockServer::start(Config::new(Behavior::Ok).key(&yubiotp_testsupport::test_key())).unwrap();
    let mut key = TestKey::new(18);
    let w = hybrid_host(&key, &cluster, &server);
    let r = auth(&w, &key.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_shared_is(&cluster, &key);
}

/// A signed REPLAYED_OTP moves the fleet's value as well as the local one:
/// another host's local fallback must refuse that OTP too.
#[test]
fn hybrid_cloud_replayed_advances_the_shared_counters() {
    if skip() {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let server = MockServer::start(
        Config::new(Behavior::Status("REPLAYED_OTP".into())).key(&yubiotp_testsupport::test_key()),
    )
    .unwrap();
    let mut key = TestKey::new(19);
    let w = hybrid_host(&key, &cluster, &server);
    let otp = key.next();
    auth(&w, &otp).assert_refused(code::AUTH_ERR);
    assert_eq!(local_value(&w, &key), key.counter);
    assert_shared_is(&cluster, &key);
    // Another host of the fleet, local mode: the OTP is refused there.
    let other = host(&key, &endpoints(&cluster.endpoints()));
    auth(&other, &otp).assert_refused(code::AUTH_ERR);
}

#[test]
fn failure_reasons_are_logged_without_secrets() {
    if skip() {
        return;
    }
    for (b, want) in [
        (Behavior::Hang, "no answer within the timeout"),
        (Behavior::Garbage, "not a JSON object"),
        (Behavior::HugeBody(4 << 20), "body too large"),
        (Behavior::Http(500), "HTTP 500"),
    ] {
        let r = against(b, "");
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.log_lines()
                .iter()
                .any(|l| l.contains("shared counters unreachable") && l.contains(want)),
            "{want}: {:?}",
            r.log_lines()
        );
    }
}

#[test]
fn unknown_outcome_is_unavailable_even_with_local() {
    if skip() {
        return;
    }
    // A plausible reply to the range, then nonsense for the txn: the
    // write may have happened, so even `local` does not accept.
    let r = against(
        Behavior::Body(b"{\"kvs\": 5}".to_vec()),
        "unavailable = \"local\"\n",
    );
    r.assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn a_dead_and_a_hanging_member_do_not_stop_a_good_one() {
    if skip() {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let hang = MockServer::start(Config::new(Behavior::Hang)).unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut key = TestKey::new(19);
    let mut urls = vec![dead, hang.url_root()];
    urls.extend(cluster.endpoints());
    let w = host(&key, &format!("{}timeout = 2\n", endpoints(&urls)));
    let r = auth(&w, &key.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.threads.0, r.threads.1);
    assert_eq!(r.fds.0, r.fds.1);
}

/// The leader is stopped while five hosts are presenting the same OTP: no
/// round ever has two successes, a round may end with none (the outcome of
/// a commit in flight is unknown: AUTHINFO_UNAVAIL), no answer is IGNORE,
/// and once a new leader is elected every round again has exactly one.
#[test]
fn leader_stopped_mid_login_never_gives_two_successes() {
    if skip() {
        return;
    }
    let mut cluster = EtcdCluster::start(3);
    let mut key = TestKey::new(13);
    let conf = format!("{}timeout = 2\n", endpoints(&cluster.endpoints()));
    let hosts: Vec<World> = (0..5).map(|_| host(&key, &conf)).collect();
    let sync = yubiotp_testsupport::tempdir();
    let mut accepted = Vec::new();
    for round in 0..12 {
        let otp = key.next();
        let go = sync.path().join(format!("go-{round}"));
        let results = present_at_once(&hosts, &otp, &go, || {
            if round == 3 {
                // Mid-run: the logins of this round are under way.
                let leader = cluster.leader().expect("a leader");
                cluster.stop(leader);
            }
            if round == 6 {
                cluster.wait_healthy(std::time::Duration::from_secs(30));
            }
        });
        let ok = results.iter().filter(|c| **c == code::SUCCESS).count();
        assert!(ok <= 1, "round {round}: never two successes: {results:?}");
        assert!(
            results
                .iter()
                .all(|c| [code::SUCCESS, code::AUTH_ERR, code::AUTHINFO_UNAVAIL].contains(c)),
            "round {round}: {results:?}"
        );
        if round > 6 {
            assert_eq!(ok, 1, "round {round}, new leader: exactly one: {results:?}");
        }
        if ok == 1 {
            accepted.push(otp);
        }
    }
    // No host accepts any of the OTPs again.
    for w in &hosts {
        for otp in &accepted {
            let r = auth(w, otp);
            assert_ne!(r.auth(), code::SUCCESS, "{}", r.everything());
            assert_ne!(r.auth(), code::IGNORE);
        }
    }
}
