//! Mutual TLS on the replica port (`[cluster.tls]`): every broker serves
//! its certificate to the peers that dial it and presents the same one when
//! it dials them; each side accepts only a certificate that chains to a CA
//! of the trusted bundle (and the dialer checks it names the host it
//! dialed). The shared-secret handshake still runs inside the encrypted
//! connection, so a certificate alone does not make a peer.

use super::Certificates;
use super::provider;
use super::trust::TrustBundle;
use crate::config::PeerTlsSettings;
use anyhow::Context;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// This broker's certificate, the CAs it trusts, and the TLS configuration
/// of both ends of a peer connection.
pub struct PeerTls {
    pub certificates: Arc<Certificates>,
    pub trust: Arc<TrustBundle>,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// Plain-TCP peers are accepted too (`cluster.tls.accept_plaintext`).
    pub accept_plaintext: bool,
}

/// The first byte of every TLS connection (a handshake record); the
/// plain inter-broker handshake starts with a length below 4 KiB, so 0.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a peer opened a connection with.
pub enum Accepted {
    Tls(Box<server::TlsStream<TcpStream>>),
    /// Plain TCP, accepted while `accept_plaintext` is on.
    Plain(TcpStream),
}

impl PeerTls {
    pub fn load(settings: &PeerTlsSettings) -> anyhow::Result<Arc<Self>> {
        let certificates = Certificates::load(&settings.cert, &settings.key)
            .context("cluster.tls: this broker's certificate")?;
        let trust = TrustBundle::load(&settings.ca).context("cluster.tls: the trusted CAs")?;
        let versions = [&rustls::version::TLS13];
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)?
            .with_client_cert_verifier(trust.client_verifier())
            .with_cert_resolver(certificates.clone());
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)?
            .dangerous()
            .with_custom_certificate_verifier(trust.server_verifier())
            .with_client_cert_resolver(certificates.clone());
        Ok(Arc::new(Self {
            certificates,
            trust,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            accept_plaintext: settings.accept_plaintext,
        }))
    }

    /// The listener's side: a peer that presents no certificate, or one
    /// from another CA, is refused here; so is one that speaks plain TCP,
    /// unless `accept_plaintext`.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<Accepted> {
        if self.accept_plaintext {
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await? == 1 && first[0] != TLS_HANDSHAKE_RECORD {
                return Ok(Accepted::Plain(stream));
            }
        }
        Ok(Accepted::Tls(Box::new(self.acceptor.accept(stream).await?)))
    }

    /// The dialer's side, to the peer known as `host` (a DNS name or an
    /// address, as in the node list: the peer's certificate must name it).
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, stream).await
    }

    /// Keep re-reading the certificate and the trusted CAs every
    /// `interval`, until the returned tasks are dropped.
    pub fn watch(&self, interval: std::time::Duration) -> [tokio::task::JoinHandle<()>; 2] {
        [
            tokio::spawn(self.certificates.clone().watch(interval)),
            tokio::spawn(self.trust.clone().watch(interval)),
        ]
    }
}
