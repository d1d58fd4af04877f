//! The inter-broker handshake: both sides prove they hold the cluster's
//! shared secret without sending it, and agree on a protocol version.
//!
//! 1. dialer → `Hello { magic, versions, cluster, uid, from, to, nonce }`
//! 2. listener → `Challenge { version, nonce, proof }` or `Refused`, where
//!    `proof = HMAC-SHA256(secret, "server" | cluster | both nonces | ids | version)`
//! 3. dialer checks the proof → `Proof { proof }` (the same with "client")
//! 4. listener checks it → `Welcome` or `Refused`
//!
//! Each message is `[length u32][JSON]`, at most 4 KiB. Fresh nonces on
//! both sides make a recorded handshake useless to replay. Anything that
//! is not a `Hello` (an Iggy client on the wrong port, a scanner) gets no
//! answer at all: the connection is closed.
//!
//! `uid` is the cluster's uid as the dialer knows it (`cluster::uid`): a
//! listener that knows another refuses it, whatever the name and secret —
//! the two were formed apart and must not mix their metadata logs. Either
//! side not knowing one yet (a broker catching up, an older build) is no
//! reason to refuse.

use super::super::ClusterSettings;
use super::super::uid::format_uid;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MAGIC: &str = "iggy-on-kubernetes/replica";
/// Protocol versions this build speaks. A rolling upgrade runs brokers of
/// two neighbouring versions side by side; each pair uses the highest
/// version both speak.
pub const MIN_VERSION: u16 = 1;
pub const MAX_VERSION: u16 = 1;
const MAX_MESSAGE_BYTES: usize = 4096;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("not an inter-broker handshake")]
    NotAPeer,
    #[error("refused by the peer: {0}")]
    RefusedByPeer(String),
    #[error("peer belongs to cluster `{theirs}`, not `{ours}`")]
    WrongCluster { ours: String, theirs: String },
    #[error(
        "the dialing broker belongs to another cluster of this name (uid {}; the listening \
         broker's is {}): the two were founded apart, as when a lone founder starts on an empty \
         volume while the rest of its cluster is down. They are kept apart so that their metadata \
         does not mix: empty the data directory of the broker(s) on the side that should not \
         exist, and they join the other",
        format_uid(*theirs),
        format_uid(*ours)
    )]
    FoundedApart { peer: u32, ours: u64, theirs: u64 },
    #[error("peer failed to prove the shared secret (wrong cluster.auth.shared_secret?)")]
    BadProof,
    #[error("peer claims to be node {0}, which is not in this cluster's node list")]
    UnknownNode(u32),
    #[error("peer dialed node {0}, but this is another node")]
    WrongNode(u32),
    #[error(
        "no common protocol version (peer speaks {0}..={1}, this broker {MIN_VERSION}..={MAX_VERSION})"
    )]
    NoCommonVersion(u16, u16),
}

#[derive(Serialize, Deserialize)]
struct Hello {
    magic: String,
    min_version: u16,
    max_version: u16,
    cluster: String,
    /// Absent: the dialer does not know its cluster's uid (yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<u64>,
    from: u32,
    to: u32,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum ListenerReply {
    Challenge {
        version: u16,
        nonce: String,
        proof: String,
    },
    Refused {
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct ClientProof {
    proof: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum Verdict {
    Welcome,
    Refused { reason: String },
}

/// What a listener learns from a successful handshake.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub peer: u32,
    pub version: u16,
}

struct Transcript<'a> {
    cluster: &'a str,
    dialer_nonce: &'a str,
    listener_nonce: &'a str,
    dialer: u32,
    listener: u32,
    version: u16,
}

impl Transcript<'_> {
    fn proof(&self, secret: &[u8], role: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        hex(hmac::sign(&key, self.message(role).as_bytes()).as_ref())
    }

    fn verify(&self, secret: &[u8], role: &str, proof: &str) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        match unhex(proof) {
            Some(tag) => hmac::verify(&key, self.message(role).as_bytes(), &tag).is_ok(),
            None => false,
        }
    }

    fn message(&self, role: &str) -> String {
        format!(
            "{MAGIC}|{role}|{}|{}|{}|{}|{}|{}",
            self.cluster,
            self.dialer_nonce,
            self.listener_nonce,
            self.dialer,
            self.listener,
            self.version
        )
    }
}

/// Dial side: authenticate to node `to`, as a broker of the cluster with
/// `uid` (if known). Returns the agreed version.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &ClusterSettings,
    uid: Option<u64>,
    to: u32,
) -> Result<u16, HandshakeError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, dial_inner(stream, settings, uid, to))
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn dial_inner<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &ClusterSettings,
    uid: Option<u64>,
    to: u32,
) -> Result<u16, HandshakeError> {
    let nonce = hex(&rand::random::<[u8; 32]>());
    send(
        stream,
        &Hello {
            magic: MAGIC.into(),
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            cluster: settings.name.clone(),
            uid,
            from: settings.node_id,
            to,
            nonce: nonce.clone(),
        },
    )
    .await?;
    let (version, listener_nonce, proof) = match receive::<_, ListenerReply>(stream).await? {
        ListenerReply::Challenge {
            version,
            nonce,
            proof,
        } => (version, nonce, proof),
        ListenerReply::Refused { reason } => return Err(HandshakeError::RefusedByPeer(reason)),
    };
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(HandshakeError::NoCommonVersion(version, version));
    }
    let transcript = Transcript {
        cluster: &settings.name,
        dialer_nonce: &nonce,
        listener_nonce: &listener_nonce,
        dialer: settings.node_id,
        listener: to,
        version,
    };
    if !transcript.verify(&settings.secret, "listener", &proof) {
        return Err(HandshakeError::BadProof);
    }
    send(
        stream,
        &ClientProof {
            proof: transcript.proof(&settings.secret, "dialer"),
        },
    )
    .await?;
    match receive::<_, Verdict>(stream).await? {
        Verdict::Welcome => Ok(version),
        Verdict::Refused { reason } => Err(HandshakeError::RefusedByPeer(reason)),
    }
}

/// Listener side: check a dialing peer, as a broker of the cluster with
/// `uid` (if known). On a refusal the peer is told why (unless it is not
/// speaking this protocol at all) and the caller logs it.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &ClusterSettings,
    uid: Option<u64>,
) -> Result<Accepted, HandshakeError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, accept_inner(stream, settings, uid))
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn accept_inner<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &ClusterSettings,
    uid: Option<u64>,
) -> Result<Accepted, HandshakeError> {
    let hello: Hello = receive(stream).await.map_err(|e| match e {
        HandshakeError::Io(_) => HandshakeError::NotAPeer,
        other => other,
    })?;
    if hello.magic != MAGIC {
        return Err(HandshakeError::NotAPeer);
    }
    let refusal = if hello.cluster != settings.name {
        Some(HandshakeError::WrongCluster {
            ours: settings.name.clone(),
            theirs: hello.cluster.clone(),
        })
    } else if let (Some(ours), Some(theirs)) = (uid, hello.uid)
        && ours != theirs
    {
        Some(HandshakeError::FoundedApart {
            peer: hello.from,
            ours,
            theirs,
        })
    } else if hello.to != settings.node_id {
        Some(HandshakeError::WrongNode(hello.to))
    } else if settings.peer(hello.from).is_none() || hello.from == settings.node_id {
        Some(HandshakeError::UnknownNode(hello.from))
    } else if hello.max_version < MIN_VERSION || hello.min_version > MAX_VERSION {
        Some(HandshakeError::NoCommonVersion(
            hello.min_version,
            hello.max_version,
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        let _ = send(
            stream,
            &ListenerReply::Refused {
                reason: refusal.to_string(),
            },
        )
        .await;
        return Err(refusal);
    }
    let version = hello.max_version.min(MAX_VERSION);
    let nonce = hex(&rand::random::<[u8; 32]>());
    let transcript = Transcript {
        cluster: &settings.name,
        dialer_nonce: &hello.nonce,
        listener_nonce: &nonce,
        dialer: hello.from,
        listener: settings.node_id,
        version,
    };
    send(
        stream,
        &ListenerReply::Challenge {
            version,
            nonce: nonce.clone(),
            proof: transcript.proof(&settings.secret, "listener"),
        },
    )
    .await?;
    let proof: ClientProof = receive(stream).await?;
    if !transcript.verify(&settings.secret, "dialer", &proof.proof) {
        let _ = send(
            stream,
            &Verdict::Refused {
                reason: HandshakeError::BadProof.to_string(),
            },
        )
        .await;
        return Err(HandshakeError::BadProof);
    }
    send(stream, &Verdict::Welcome).await?;
    Ok(Accepted {
        peer: hello.from,
        version,
    })
}

async fn send<S: AsyncWrite + Unpin, T: Serialize>(
    stream: &mut S,
    message: &T,
) -> Result<(), HandshakeError> {
    let json = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}

async fn receive<S: AsyncRead + Unpin, T: serde::de::DeserializeOwned>(
    stream: &mut S,
) -> Result<T, HandshakeError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE_BYTES {
        return Err(HandshakeError::NotAPeer);
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf).map_err(|_| HandshakeError::NotAPeer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Peer;

    fn settings(node_id: u32, name: &str, secret: &str) -> ClusterSettings {
        ClusterSettings {
            name: name.into(),
            node_id,
            nodes: (0..3)
                .map(|id| Peer {
                    id,
                    host: "127.0.0.1".into(),
                    replica_port: 9090,
                })
                .collect(),
            template: None,
            founders: 3,
            secret: secret.as_bytes().to_vec(),
            replica_bind: "127.0.0.1:0".parse().unwrap(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
            advertised: Default::default(),
            default_replication_factor: 1,
            min_in_sync_replicas: 0,
            replica_max_lag: Duration::from_secs(1),
            zone: String::new(),
            metadata_version: crate::metadata::command::METADATA_VERSION,
            tls: None,
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    type Outcome = (
        Result<u16, HandshakeError>,
        Result<Accepted, HandshakeError>,
    );

    async fn run(dialer: ClusterSettings, listener: ClusterSettings, to: u32) -> Outcome {
        run_with_uids((dialer, None), (listener, None), to).await
    }

    async fn run_with_uids(
        (dialer, dialer_uid): (ClusterSettings, Option<u64>),
        (listener, listener_uid): (ClusterSettings, Option<u64>),
        to: u32,
    ) -> Outcome {
        let (mut a, mut b) = tokio::io::duplex(8192);
        let dial_side = async move { dial(&mut a, &dialer, dialer_uid, to).await };
        let accept_side = async move { accept(&mut b, &listener, listener_uid).await };
        tokio::join!(dial_side, accept_side)
    }

    #[tokio::test]
    async fn peers_with_the_same_secret_and_name_agree() {
        let (dialed, accepted) = run(settings(1, "c", SECRET), settings(0, "c", SECRET), 0).await;
        assert_eq!(dialed.unwrap(), MAX_VERSION);
        assert_eq!(accepted.unwrap().peer, 1);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let other = "fedcba9876543210fedcba9876543210";
        let (dialed, accepted) = run(settings(1, "c", other), settings(0, "c", SECRET), 0).await;
        assert!(
            matches!(dialed, Err(HandshakeError::BadProof)),
            "{dialed:?}"
        );
        assert!(accepted.is_err());
    }

    #[tokio::test]
    async fn another_clusters_name_or_an_unknown_node_is_refused() {
        let (dialed, accepted) =
            run(settings(1, "other", SECRET), settings(0, "c", SECRET), 0).await;
        assert!(matches!(dialed, Err(HandshakeError::RefusedByPeer(_))));
        assert!(matches!(accepted, Err(HandshakeError::WrongCluster { .. })));
        let (_, accepted) = run(settings(0, "c", SECRET), settings(0, "c", SECRET), 0).await;
        assert!(matches!(accepted, Err(HandshakeError::UnknownNode(0))));
        let (_, accepted) = run(settings(1, "c", SECRET), settings(0, "c", SECRET), 2).await;
        assert!(matches!(accepted, Err(HandshakeError::WrongNode(2))));
    }

    #[tokio::test]
    async fn a_peer_of_a_cluster_founded_apart_is_refused() {
        let peer = |node, uid| (settings(node, "c", SECRET), uid);
        let (dialed, accepted) = run_with_uids(peer(1, Some(7)), peer(0, Some(8)), 0).await;
        assert!(
            matches!(&dialed, Err(HandshakeError::RefusedByPeer(why)) if why.contains("founded apart")),
            "{dialed:?}"
        );
        assert!(
            matches!(
                accepted,
                Err(HandshakeError::FoundedApart {
                    peer: 1,
                    ours: 8,
                    theirs: 7
                })
            ),
            "{accepted:?}"
        );
        // The same uid, or one side that does not know it yet.
        for (dialer, listener) in [(Some(7), Some(7)), (None, Some(7)), (Some(7), None)] {
            let (dialed, accepted) = run_with_uids(peer(1, dialer), peer(0, listener), 0).await;
            assert!(
                dialed.is_ok() && accepted.is_ok(),
                "{dialer:?} → {listener:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_client_speaking_another_protocol_gets_no_answer() {
        let (mut a, mut b) = tokio::io::duplex(8192);
        let listener = settings(0, "c", SECRET);
        let accept_side = tokio::spawn(async move { accept(&mut b, &listener, None).await });
        // The first bytes of an Iggy 0.11 request header.
        a.write_all(&[0u8; 256]).await.unwrap();
        let result = accept_side.await.unwrap();
        assert!(
            matches!(result, Err(HandshakeError::NotAPeer)),
            "{result:?}"
        );
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await.unwrap(), 0, "nothing is sent back");
    }
}
