//! A certificate and key from PEM files, reloaded when the files change.
//!
//! Kubernetes updates a mounted Secret by writing a new directory and
//! swapping a `..data` symlink, so the paths stay the same while their
//! contents change. The broker therefore polls the *contents* (a hash of
//! both files) rather than watching inodes. Each TLS handshake asks
//! [`Certificates`] for the current key, so new connections get the new
//! certificate at once and established connections are untouched — no
//! restart. A half-written pair (certificate and key not matching yet)
//! is logged and ignored until the next poll.

use super::provider;
use anyhow::{Context, bail};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What a certificate says of itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Described {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_after: i64,
}

impl Described {
    pub fn of(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// The certificate currently served, and where it comes from.
#[derive(Debug)]
pub struct Certificates {
    /// Certificate and key files; `None` for an in-memory certificate.
    files: Option<(PathBuf, PathBuf)>,
    current: RwLock<Arc<CertifiedKey>>,
    /// Hash of the file contents `current` was built from.
    loaded_from: Mutex<u64>,
}

impl Certificates {
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<Self>> {
        let (key, hash) = read_pair(cert_path, key_path)?;
        Ok(Arc::new(Self {
            files: Some((cert_path.to_path_buf(), key_path.to_path_buf())),
            current: RwLock::new(key),
            loaded_from: Mutex::new(hash),
        }))
    }

    /// A self-signed certificate for `localhost` that lives only in memory
    /// (a new one on every start) — upstream's development default for QUIC.
    pub fn ephemeral() -> anyhow::Result<Arc<Self>> {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let key = certified_key(
            generated.cert.pem().as_bytes(),
            generated.signing_key.serialize_pem().as_bytes(),
        )?;
        Ok(Arc::new(Self {
            files: None,
            current: RwLock::new(key),
            loaded_from: Mutex::new(0),
        }))
    }

    /// Reload if the files changed; returns whether the certificate changed.
    /// On an error the previous certificate stays in use.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let Some((cert_path, key_path)) = &self.files else {
            return Ok(false);
        };
        let contents = (std::fs::read(cert_path)?, std::fs::read(key_path)?);
        let hash = contents_hash(&contents.0, &contents.1);
        if hash
            == *self
                .loaded_from
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Ok(false);
        }
        let key = certified_key(&contents.0, &contents.1)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        *self
            .loaded_from
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hash;
        Ok(true)
    }

    /// Expiry (Unix seconds) of the leaf certificate currently served.
    pub fn not_after(&self) -> Option<i64> {
        self.describe().map(|d| d.not_after)
    }

    /// Subject, issuer and expiry of the leaf certificate currently served.
    pub fn describe(&self) -> Option<Described> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let leaf = current.cert.first()?;
        Described::of(leaf.as_ref())
    }

    /// A rustls server configuration that always serves the current
    /// certificate.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(Arc::new(config))
    }

    /// A QUIC (quinn) server configuration serving the current certificate.
    pub fn quic_config(self: &Arc<Self>) -> anyhow::Result<quinn::ServerConfig> {
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // No 0-RTT: replayed early data could append a batch twice.
        tls.max_early_data_size = 0;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    /// Poll the files every `interval` until the task is dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let Some((cert_path, _)) = self.files.clone() else {
            return;
        };
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    cert = %cert_path.display(),
                    "TLS certificate reloaded; new connections use it"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    cert = %cert_path.display(),
                    "TLS certificate not reloaded (keeping the current one): {e:#}"
                ),
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The same certificate, presented as a client (to peers, on the replica
/// port).
impl ResolvesClientCert for Certificates {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn contents_hash(cert: &[u8], key: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cert.hash(&mut hasher);
    key.hash(&mut hasher);
    hasher.finish()
}

fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<(Arc<CertifiedKey>, u64)> {
    let cert = std::fs::read(cert_path)
        .with_context(|| format!("cannot read TLS certificate {}", cert_path.display()))?;
    let key = std::fs::read(key_path)
        .with_context(|| format!("cannot read TLS key {}", key_path.display()))?;
    let certified = certified_key(&cert, &key).with_context(|| {
        format!(
            "invalid TLS certificate/key pair {} / {}",
            cert_path.display(),
            key_path.display()
        )
    })?;
    Ok((certified, contents_hash(&cert, &key)))
}

/// Parse a PEM chain and key, and check that they belong together.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("certificate file is not PEM")?;
    if chain.is_empty() {
        bail!("certificate file holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("key file holds no private key")?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .context("unsupported private key")?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .context("the key does not match the certificate")?;
    Ok(Arc::new(certified))
}

/// For development: write a self-signed certificate for `names` unless
/// both files exist. Returns whether one was generated.
pub fn ensure_self_signed(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> anyhow::Result<bool> {
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    for path in [cert_path, key_path] {
        if let Some(dir) = path.parent() {
            crate::storage::fs::create_dir_durable(dir)?;
        }
    }
    crate::storage::fs::write_atomic(
        key_path,
        generated.signing_key.serialize_pem().as_bytes(),
        true,
    )?;
    crate::storage::fs::write_atomic(cert_path, generated.cert.pem().as_bytes(), true)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        assert!(ensure_self_signed(&cert, &key, &["localhost".into()]).unwrap());
        (cert, key)
    }

    #[test]
    fn reloads_only_when_the_contents_change_and_keeps_serving_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let certs = Certificates::load(&cert, &key).unwrap();
        let first = certs.current.read().unwrap().clone();
        assert!(!certs.reload_if_changed().unwrap());

        // A key that does not match the certificate: refused, old one kept.
        let (_, other_key) = self_signed(dir.path(), "b");
        std::fs::copy(&other_key, &key).unwrap();
        assert!(certs.reload_if_changed().is_err());
        assert!(Arc::ptr_eq(&first, &certs.current.read().unwrap()));

        // A matching new pair is picked up.
        std::fs::copy(dir.path().join("b.crt"), &cert).unwrap();
        assert!(certs.reload_if_changed().unwrap());
        assert!(!Arc::ptr_eq(&first, &certs.current.read().unwrap()));
    }

    #[test]
    fn garbage_files_give_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.crt");
        let key = dir.path().join("c.key");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let err = Certificates::load(&cert, &key).unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid TLS certificate/key pair"),
            "{err:#}"
        );
    }
}
