//! TLS on the TCP listener, with the official client verifying the server
//! against a CA, and certificate rotation the way Kubernetes does it (a new
//! directory and a `..data` symlink swap) while a client keeps producing.

mod common;

use common::*;
use iggy::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A test CA that issues `localhost` certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A new leaf certificate and key (PEM), and the certificate's DER.
    fn issue(&self) -> (String, String, Vec<u8>) {
        self.issue_with(CertificateParams::new(vec!["localhost".to_string()]).unwrap())
    }

    /// A leaf certificate valid until midnight UTC of the given day.
    fn issue_until(&self, year: i32, month: u8, day: u8) -> (String, String, Vec<u8>) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        self.issue_with(params)
    }

    fn issue_with(&self, params: CertificateParams) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A Secret volume as the kubelet lays it out: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>`.
struct SecretVolume {
    dir: PathBuf,
    version: u32,
}

impl SecretVolume {
    fn new(dir: &Path, cert: &str, key: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = Self {
            dir: dir.to_path_buf(),
            version: 0,
        };
        volume.update(cert, key);
        for file in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
        }
        volume
    }

    /// Write a new version and swap `..data` atomically (rename over it).
    fn update(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let target = self.dir.join(&version);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert).unwrap();
        std::fs::write(target.join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

fn start_tls_broker(volume: &SecretVolume) -> TestBroker {
    let cert = volume.cert().display().to_string();
    let key = volume.key().display().to_string();
    TestBroker::start_with(&[
        ("IGGY_TCP_TLS_ENABLED", "true"),
        ("IGGY_TCP_TLS_CERT_FILE", &cert),
        ("IGGY_TCP_TLS_KEY_FILE", &key),
        ("IGGY_TCP_TLS_RELOAD_INTERVAL", "200ms"),
        ("IGGY_WEBSOCKET_TLS_ENABLED", "true"),
        ("IGGY_WEBSOCKET_TLS_CERT_FILE", &cert),
        ("IGGY_WEBSOCKET_TLS_KEY_FILE", &key),
        ("IGGY_WEBSOCKET_TLS_RELOAD_INTERVAL", "200ms"),
        ("IGGY_HTTP_TLS_ENABLED", "true"),
        ("IGGY_HTTP_TLS_CERT_FILE", &cert),
        ("IGGY_HTTP_TLS_KEY_FILE", &key),
    ])
}

/// A CA (also written to `ca.pem`), a Secret volume with a certificate it
/// issued, and a broker serving it; returns the certificate's DER too.
fn setup(dir: &Path) -> (Ca, PathBuf, SecretVolume, TestBroker, Vec<u8>) {
    let ca = Ca::new();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (cert, key, der) = ca.issue();
    let volume = SecretVolume::new(&dir.join("secret"), &cert, &key);
    let broker = start_tls_broker(&volume);
    (ca, ca_file, volume, broker, der)
}

async fn tls_client(broker: &TestBroker, ca_file: &Path) -> IggyClient {
    let connection = format!(
        "iggy://iggy:iggy@{}?tls=true&tls_domain=localhost&tls_ca_file={}",
        broker.address,
        ca_file.display()
    );
    let client = IggyClient::from_connection_string(&connection).unwrap();
    client.connect().await.unwrap();
    client
}

/// The certificate a fresh TLS handshake gets from the broker.
async fn served_certificate(broker: &TestBroker, ca_pem: &str) -> Vec<u8> {
    let tls = tls_connect(broker.address, ca_pem).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A TLS connection to `address` that trusts only the test CA.
async fn tls_connect(
    address: std::net::SocketAddr,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(iggy_broker::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_verify_the_broker_and_rotation_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_file, mut volume, broker, first_der) = setup(dir.path());
    assert_eq!(served_certificate(&broker, &ca.pem).await, first_der);

    let client = tls_client(&broker, &ca_file).await;
    create_stream_and_topic(&client, "s", "t", 1).await;

    // Produce continuously over one TLS connection while the certificate
    // is rotated underneath it.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (stop, sent) = (stop.clone(), sent.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut next_id = 1u128;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = messages(next_id, 10);
                match client
                    .send_messages(
                        &id("s"),
                        &id("t"),
                        &Partitioning::partition_id(0),
                        &mut batch,
                    )
                    .await
                {
                    Ok(_) => {
                        sent.fetch_add(10, Ordering::Relaxed);
                        next_id += 10;
                    }
                    Err(e) => failures.push(e),
                }
            }
            (client, failures)
        })
    };
    wait_for("the producer to get going", Duration::from_secs(10), || {
        sent.load(Ordering::Relaxed) >= 50
    })
    .await;

    let (cert, key, second_der) = ca.issue();
    volume.update(&cert, &key);
    let rotated_at = Instant::now();
    loop {
        if served_certificate(&broker, &ca.pem).await == second_der {
            break;
        }
        assert!(
            rotated_at.elapsed() < Duration::from_secs(10),
            "the broker still serves the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the rotation goes on producing.
    let sent_at_rotation = sent.load(Ordering::Relaxed);
    wait_for("sends after the rotation", Duration::from_secs(10), || {
        sent.load(Ordering::Relaxed) >= sent_at_rotation + 50 || producer.is_finished()
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (client, failures) = producer.await.unwrap();
    assert!(
        failures.is_empty(),
        "requests failed during rotation: {failures:?}"
    );
    let total = sent.load(Ordering::Relaxed);
    assert!(
        total > sent_at_rotation,
        "the old connection kept producing"
    );

    // Everything acknowledged is there, and new clients connect.
    let stored = poll_all(&client, "s", "t", 0).await;
    assert_eq!(stored.len() as u64, total);
    let fresh = tls_client(&broker, &ca_file).await;
    fresh.ping().await.unwrap();
    assert!(broker.log().contains("TLS certificate reloaded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_update_keeps_the_old_one_and_plaintext_clients_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_file, mut volume, broker, der) = setup(dir.path());
    let cert = std::fs::read_to_string(volume.cert()).unwrap();

    // A key that does not belong to the certificate.
    let (_, other_key, _) = ca.issue();
    volume.update(&cert, &other_key);
    wait_for("the reload to be refused", Duration::from_secs(10), || {
        broker.log().contains("TLS certificate not reloaded")
    })
    .await;
    assert_eq!(served_certificate(&broker, &ca.pem).await, der);

    // A plaintext client cannot talk to the TLS port; TLS clients still can.
    let plain = IggyClient::from_connection_string(&broker.connection_string()).unwrap();
    let attempt = tokio::time::timeout(Duration::from_secs(5), plain.connect()).await;
    assert!(
        !matches!(attempt, Ok(Ok(()))),
        "plaintext connect succeeded"
    );
    tls_client(&broker, &ca_file).await.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_verify_the_broker_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, ca_file, _volume, broker, _) = setup(dir.path());
    let connection = format!(
        "iggy+ws://iggy:iggy@{}?tls=true&tls_domain=localhost&tls_ca_file={}",
        broker.websocket_address.unwrap(),
        ca_file.display()
    );
    let client = IggyClient::from_connection_string(&connection).unwrap();
    client.connect().await.unwrap();
    create_stream_and_topic(&client, "s", "t", 1).await;
    send(&client, "s", "t", &Partitioning::partition_id(0), 1, 100).await;
    assert_eq!(poll_all(&client, "s", "t", 0).await.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_listener_serves_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (ca, _ca_file, _volume, broker, der) = setup(dir.path());
    let mut tls = tls_connect(broker.http_address.unwrap(), &ca.pem).await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        der
    );
    tls.write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    assert!(
        response.starts_with("HTTP/1.0 200") && response.ends_with("pong"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_is_exported_per_listener_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key, _) = ca.issue_until(2031, 1, 2);
    let mut volume = SecretVolume::new(&dir.path().join("secret"), &cert, &key);
    let broker = TestBroker::start_with(&[
        ("IGGY_TCP_TLS_ENABLED", "true"),
        (
            "IGGY_TCP_TLS_CERT_FILE",
            &volume.cert().display().to_string(),
        ),
        ("IGGY_TCP_TLS_KEY_FILE", &volume.key().display().to_string()),
        ("IGGY_TCP_TLS_RELOAD_INTERVAL", "200ms"),
    ]);
    let http = broker.http_address.unwrap();
    let series = r#"iggy_broker_tls_certificate_not_after_seconds{listener="tcp"}"#;
    let metrics = http_get(http, "/metrics").await;
    assert_eq!(
        metric(&metrics, series),
        1_925_078_400.0,
        "2031-01-02T00:00:00Z"
    );
    // The in-memory QUIC certificate is reported too (QUIC is on in tests).
    assert!(metrics.contains(r#"iggy_broker_tls_certificate_not_after_seconds{listener="quic"}"#));
    assert!(metric(&metrics, "iggy_broker_filesystem_size_bytes") > 0.0);
    assert!(metric(&metrics, "iggy_broker_filesystem_avail_bytes") > 0.0);

    let (cert, key, _) = ca.issue_until(2032, 6, 30);
    volume.update(&cert, &key);
    let rotated_at = Instant::now();
    while metric(&http_get(http, "/metrics").await, series) != 1_972_166_400.0 {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(10),
            "the metric still shows the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
