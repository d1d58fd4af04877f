//! Certificates the operator issues (`spec.tls.mode: Operator`): one CA
//! per cluster and, signed by it, one certificate per broker. Pure: the
//! time is an argument, so tests can move the clock.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What the operator needs to know about a certificate it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Unix seconds.
    pub not_after: i64,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
    pub subject: String,
    /// DNS names and addresses it is valid for.
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("not a PEM certificate: {0}")]
    Parse(String),
}

fn at(time: SystemTime) -> OffsetDateTime {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A new CA named after the cluster, valid from `now` for `validity`. The
/// time in its name tells one CA of the cluster from the next.
pub fn new_ca(
    cluster: &str,
    now: SystemTime,
    validity: Duration,
) -> Result<KeyedCertificate, CertificateError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{cluster} CA {issued}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "iggy-operator");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A little slack for clocks behind the operator's.
    params.not_before = at(now - Duration::from_secs(300));
    params.not_after = at(now + validity);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(KeyedCertificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A certificate for `names` (DNS names or addresses) signed by `ca`,
/// valid from `now` for `validity` but never past the CA. It serves
/// clients and authenticates to peers (server and client use).
pub fn issue(
    ca: &KeyedCertificate,
    common_name: &str,
    names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<KeyedCertificate, CertificateError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let ca_not_after = inspect(&ca.cert_pem)?.not_after;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = at(now - Duration::from_secs(300));
    let wanted = at(now + validity);
    let cap = OffsetDateTime::from_unix_timestamp(ca_not_after).unwrap_or(wanted);
    params.not_after = wanted.min(cap);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(KeyedCertificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The first certificate of a PEM text.
pub fn inspect(pem: &str) -> Result<CertificateInfo, CertificateError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let cert = block
        .parse_x509()
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .map(std::net::IpAddr::from)
                            .ok(),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertificateInfo {
        not_after: cert.validity().not_after.timestamp(),
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        names,
    })
}

/// Every certificate of a PEM bundle.
pub fn inspect_bundle(pem: &str) -> Result<Vec<CertificateInfo>, CertificateError> {
    let mut found = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| CertificateError::Parse(e.to_string()))?;
        let cert = block
            .parse_x509()
            .map_err(|e| CertificateError::Parse(e.to_string()))?;
        found.push(CertificateInfo {
            not_after: cert.validity().not_after.timestamp(),
            issuer: cert.issuer().to_string(),
            subject: cert.subject().to_string(),
            names: Vec::new(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_broker_certificate_names_its_hosts_and_never_outlives_its_ca() {
        let now = SystemTime::now();
        let ca = new_ca("iggy/demo", now, 10 * DAY).unwrap();
        let ca_info = inspect(&ca.cert_pem).unwrap();
        assert!(ca_info.subject.contains("iggy/demo CA"), "{ca_info:?}");
        let names = vec![
            "demo-0.demo-headless.iggy.svc".to_string(),
            "10.0.0.1".into(),
        ];
        let cert = issue(&ca, "demo-0", &names, now, 90 * DAY).unwrap();
        let info = inspect(&cert.cert_pem).unwrap();
        assert_eq!(info.names, names);
        assert_eq!(info.issuer, ca_info.subject);
        assert_eq!(
            info.not_after, ca_info.not_after,
            "capped at the CA's expiry"
        );
        let short = issue(&ca, "demo-0", &names, now, DAY).unwrap();
        let expected = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + 86_400;
        assert!((inspect(&short.cert_pem).unwrap().not_after - expected).abs() <= 1);
    }

    #[test]
    fn a_bundle_lists_each_ca() {
        let now = SystemTime::now();
        let old = new_ca("c", now, DAY).unwrap();
        let new = new_ca("c", now + Duration::from_secs(5), 2 * DAY).unwrap();
        let bundle = inspect_bundle(&format!("{}{}", new.cert_pem, old.cert_pem)).unwrap();
        assert_eq!(bundle.len(), 2);
        assert_ne!(bundle[0].subject, bundle[1].subject);
        assert!(inspect("garbage").is_err());
    }
}
