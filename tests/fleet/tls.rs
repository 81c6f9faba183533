//! Fleet quotas over TLS (`rediss://`, feature `fleet`) against a real `redis-server`
//! listening with TLS only on a free loopback port. The CA, the server's and the
//! client's certificates are made here at run time (no private key is committed);
//! the server asks for a client certificate (`tls-auth-clients yes`), so the limit
//! proves the CA file, the client certificate and its key all work.
//!
//! Time: about 3 s.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::{wait_for, RedisServer};

use breakwater::engine::Engine;
use breakwater::fleet::{FleetConfig, FleetRateLimiter, OnUnavailable};
use breakwater::limiter::RateLimiterConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A directory of PEM files: two CAs (`ca.pem` signs everything else, `other-ca.pem`
/// nothing here), the server's certificate and key, and a client's; removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("bw-fleet-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = certified_ca("breakwater test CA");
        let other = certified_ca("breakwater other CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
        for (who, purpose) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let mut params =
                CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                    .unwrap();
            params.distinguished_name.push(DnType::CommonName, who);
            params.extended_key_usages = vec![purpose];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.join(format!("{who}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{who}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// `redis-server` with TLS only, asking clients for a certificate of `ca.pem`.
    fn server(&self) -> RedisServer {
        let arg = |file: &str| self.path(file).display().to_string();
        let (cert, key, ca) = (arg("server.pem"), arg("server.key"), arg("ca.pem"));
        RedisServer::start_tls(&[
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "yes",
        ])
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certified_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn tls_config(server: &RedisServer, pki: &Pki, ca: &str, client_cert: bool) -> FleetConfig {
    let mut c = FleetConfig::new(server.address())
        .with_namespace("tls".into())
        .with_on_unavailable(OnUnavailable::Deny)
        .with_ca_file(Some(pki.path(ca)));
    if client_cert {
        c = c
            .with_cert_file(Some(pki.path("client.pem")))
            .with_key_file(Some(pki.path("client.key")));
    }
    // As the plain suite: generous for a loaded machine (the default 50 ms connects here
    // too, handshake included).
    c.with_timeout(Duration::from_millis(250))
        .with_max_backoff(Duration::from_millis(200))
}

/// Over TLS the limit takes its tokens from Redis (`deny` admits nothing without it)
/// and admits no more than the fleet quota.
#[test]
fn a_tls_connection_admits_under_the_fleet_quota() {
    let pki = Pki::new("admit");
    let server = pki.server();
    let (rate, burst) = (50u64, 10u64);
    let quota = RateLimiterConfig::new(rate, Duration::from_secs(1)).with_burst(burst);
    let limiter =
        FleetRateLimiter::new("q", quota, tls_config(&server, &pki, "ca.pem", true)).unwrap();
    let began = Instant::now();
    let mut admitted = 0u64;
    while began.elapsed() < Duration::from_millis(600) {
        if limiter.try_acquire().is_ok() {
            admitted += 1;
        }
        thread::sleep(Duration::from_micros(500));
    }
    // Grants go on until a refill asked for before the end returns (one timeout).
    let elapsed_ms = began.elapsed().as_millis() as u64 + 500;
    let snap = limiter.snapshot();
    assert!(
        admitted <= rate * elapsed_ms / 1000 + burst,
        "admitted {admitted} in {elapsed_ms} ms: {snap:?}"
    );
    assert!(admitted >= 10, "admitted {admitted} over TLS: {snap:?}");
    assert!(!snap.unavailable, "{snap:?}");
    assert_eq!(snap.failures, 0, "{snap:?}");
}

/// A CA that did not sign the server's certificate, and no client certificate for a
/// server that asks for one: degraded, with a message naming TLS. Nothing is admitted
/// (`deny`).
#[test]
fn a_wrong_ca_or_a_missing_client_certificate_is_a_tls_failure() {
    let pki = Pki::new("wrong");
    let server = pki.server();
    let quota = RateLimiterConfig::new(100, Duration::from_secs(1));
    for (what, config) in [
        (
            "a wrong CA",
            tls_config(&server, &pki, "other-ca.pem", true),
        ),
        (
            "no client certificate",
            tls_config(&server, &pki, "ca.pem", false),
        ),
    ] {
        let limiter = FleetRateLimiter::new("q", quota, config).unwrap();
        wait_for(what, Duration::from_secs(5), || {
            let _ = limiter.try_acquire();
            limiter.unavailable_message().is_some()
        });
        let message = limiter.unavailable_message().unwrap();
        eprintln!("{what}: {message}");
        assert!(message.contains("TLS"), "{what}: {message}");
        assert!(
            limiter.try_acquire().is_err(),
            "{what}: deny admits nothing"
        );
    }
}

fn policy(server: &RedisServer, tls: &str) -> String {
    format!(
        r#"
[policies.payments.rate_limiter]
rate = 50
period = "1s"
burst = 10
scope = "fleet"

[policies.payments.fleet]
address = "{}"
namespace = "tlsfile"
on_unavailable = "deny"
timeout = "500ms"
{tls}
"#,
        server.address()
    )
}

fn toml_path(path: &Path) -> String {
    toml_string(&path.display().to_string())
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

/// The policy file's `ca_file`, `cert_file` and `key_file`: a working set admits and
/// is healthy; a file that cannot be read or holds no certificate is a config error at
/// load naming its key; TLS files on a plain address are refused.
#[test]
fn the_policy_file_configures_tls_and_refuses_bad_files_at_load() {
    let pki = Pki::new("file");
    let server = pki.server();
    let good = format!(
        "ca_file = {}\ncert_file = {}\nkey_file = {}",
        toml_path(&pki.path("ca.pem")),
        toml_path(&pki.path("client.pem")),
        toml_path(&pki.path("client.key")),
    );
    let engine = Engine::from_toml_str(&policy(&server, &good)).unwrap();
    let payments = engine.policy("payments").unwrap();
    wait_for("a permit over TLS", Duration::from_secs(5), || {
        payments.acquire().map(|p| p.success()).is_ok()
    });
    assert_eq!(engine.health().status.as_str(), "healthy");

    for (tls, key, says) in [
        (
            format!("ca_file = {}", toml_path(&pki.path("absent.pem"))),
            "ca_file",
            "cannot read",
        ),
        (
            format!("ca_file = {}", toml_path(&pki.path("client.key"))),
            "ca_file",
            "no PEM certificate",
        ),
        (
            format!(
                "ca_file = {}\ncert_file = {}",
                toml_path(&pki.path("ca.pem")),
                toml_path(&pki.path("client.pem"))
            ),
            "key_file",
            "missing",
        ),
    ] {
        let e = Engine::from_toml_str(&policy(&server, &tls))
            .unwrap_err()
            .to_string();
        eprintln!("{e}");
        assert!(
            e.contains(&format!("`fleet.{key}`")) && e.contains(says),
            "{tls}: {e}"
        );
    }
    let plain = policy(
        &server,
        &format!("ca_file = {}", toml_path(&pki.path("ca.pem"))),
    )
    .replace("rediss://", "");
    let e = Engine::from_toml_str(&plain).unwrap_err().to_string();
    assert!(e.contains("ca_file") && e.contains("rediss://"), "{e}");
}
