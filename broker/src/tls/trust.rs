//! The CAs a peer's certificate must chain to: a PEM bundle file, read
//! again when its contents change, and rustls verifiers that always check
//! against the bundle loaded last — one for the replica listener (checking
//! the dialing broker's client certificate), one for the dialer (checking
//! the listening broker's server certificate).
//!
//! While a CA is being replaced the bundle holds both the old and the new
//! one, so brokers with certificates from either trust each other; a
//! handshake already made is never checked again.

use super::certificates::Described;
use super::provider;
use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The trusted CAs, from `file`.
#[derive(Debug)]
pub struct TrustBundle {
    file: PathBuf,
    current: RwLock<Verifiers>,
    /// Hash of the file contents `current` was built from.
    loaded_from: Mutex<u64>,
}

#[derive(Debug, Clone)]
struct Verifiers {
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<WebPkiServerVerifier>,
    /// The CAs of the bundle.
    cas: Vec<Described>,
}

impl TrustBundle {
    pub fn load(file: &Path) -> anyhow::Result<Arc<Self>> {
        let pem = std::fs::read(file)
            .with_context(|| format!("cannot read the CA bundle {}", file.display()))?;
        let verifiers =
            verifiers(&pem).with_context(|| format!("invalid CA bundle {}", file.display()))?;
        Ok(Arc::new(Self {
            file: file.to_path_buf(),
            current: RwLock::new(verifiers),
            loaded_from: Mutex::new(hash(&pem)),
        }))
    }

    /// Reload if the file changed; returns whether it did. On an error the
    /// CAs loaded before stay trusted.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let pem = std::fs::read(&self.file)?;
        let hash = hash(&pem);
        if hash == *lock(&self.loaded_from) {
            return Ok(false);
        }
        let verifiers = verifiers(&pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = verifiers;
        *lock(&self.loaded_from) = hash;
        Ok(true)
    }

    /// Every trusted CA.
    pub fn cas(&self) -> Vec<Described> {
        self.current().cas
    }

    /// Poll the file every `interval` until the task is dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    bundle = %self.file.display(),
                    cas = self.cas().len(),
                    "trusted CAs reloaded; new peer connections are checked against them"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    bundle = %self.file.display(),
                    "trusted CAs not reloaded (keeping the current ones): {e:#}"
                ),
            }
        }
    }

    /// Checks clients' certificates against the current CAs (and requires
    /// one).
    pub fn client_verifier(self: &Arc<Self>) -> Arc<dyn ClientCertVerifier> {
        Arc::new(CurrentCas(self.clone()))
    }

    /// Checks servers' certificates against the current CAs.
    pub fn server_verifier(self: &Arc<Self>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(CurrentCas(self.clone()))
    }

    fn current(&self) -> Verifiers {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn verifiers(pem: &[u8]) -> anyhow::Result<Verifiers> {
    let cas = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .context("not PEM")?;
    if cas.is_empty() {
        bail!("holds no certificate");
    }
    let mut roots = RootCertStore::empty();
    let mut described = Vec::new();
    for ca in cas {
        described.push(Described::of(ca.as_ref()).context("not a certificate")?);
        roots.add(ca).context("not a usable CA certificate")?;
    }
    let roots = Arc::new(roots);
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build()?;
    let servers = WebPkiServerVerifier::builder_with_provider(roots, provider()).build()?;
    Ok(Verifiers {
        clients,
        servers,
        cas: described,
    })
}

fn hash(contents: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    contents.hash(&mut hasher);
    hasher.finish()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A verifier that asks the bundle for its current CAs on every handshake.
#[derive(Debug)]
struct CurrentCas(Arc<TrustBundle>);

impl ClientCertVerifier for CurrentCas {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; brokers have one certificate each.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .current()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls12_signature(
            self.0.current().clients.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls13_signature(
            self.0.current().clients.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ClientCertVerifier::supported_verify_schemes(self.0.current().clients.as_ref())
    }
}

impl ServerCertVerifier for CurrentCas {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.current().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(
            self.0.current().servers.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(
            self.0.current().servers.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ServerCertVerifier::supported_verify_schemes(self.0.current().servers.as_ref())
    }
}
