//! What the operator's own CA and the brokers' certificates should be
//! (`spec.tls.mode: Operator`), decided from what the Secrets hold, the
//! time and what the brokers report. Pure: every input is an argument, so
//! tests move the clock.
//!
//! - A broker's certificate is (re)issued when it is missing, names other
//!   hosts than it should, comes from another CA than the signing one, is
//!   within `renewBefore` of expiring, or the cluster's
//!   [`RENEW_ANNOTATION`] has a value not handled yet.
//! - The CA is replaced in three steps, so that nothing that trusts the
//!   published bundle ever sees a certificate it cannot verify and no
//!   broker restarts:
//!   1. *trusting*: a new CA joins the bundle beside the old one (the old
//!      one still signs); this lasts at least [`MIN_TRUST_OVERLAP`], for
//!      mounted copies of the bundle to catch up, and until every broker
//!      reports trusting the new CA;
//!   2. *issuing*: the brokers get certificates of the new CA; this lasts
//!      until every broker serves one;
//!   3. the old CA leaves the bundle.
//!
//!   It starts `renewBefore` ahead of the CA's expiry, or when the
//!   cluster's [`ROTATE_CA_ANNOTATION`] has a value not handled yet.

use crate::crd::IggyCluster;
use crate::crd::cluster::{BrokerCertificate, TlsStatus};
use crate::resources::certificates::{
    CertificateError, CertificateInfo, KeyedCertificate, inspect, issue, new_ca,
};
use crate::resources::{names, tls};
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// On the `IggyCluster`: a new value renews every broker's certificate now.
pub const RENEW_ANNOTATION: &str = "iggy.rs/renew-certificates";
/// On the `IggyCluster`: a new value replaces the CA now.
pub const ROTATE_CA_ANNOTATION: &str = "iggy.rs/rotate-ca";
/// On the CA Secret: the step of a CA rotation under way.
pub const ROTATION_ANNOTATION: &str = "iggy.rs/ca-rotation";
/// On the CA Secret: when that step started (Unix seconds).
pub const ROTATION_SINCE_ANNOTATION: &str = "iggy.rs/ca-rotation-since";
/// On the CA Secret: the values of the two cluster annotations handled.
pub const RENEWED_FOR_ANNOTATION: &str = "iggy.rs/renewed-for";
pub const ROTATED_FOR_ANNOTATION: &str = "iggy.rs/rotated-for";

/// How long both CAs are published before brokers serve the new one:
/// the kubelet refreshes mounted Secrets and ConfigMaps within about a
/// minute (its sync period) plus its cache's lifetime.
pub const MIN_TRUST_OVERLAP: Duration = Duration::from_secs(120);

/// Keys of the CA Secret.
pub const CA_CERT: &str = "tls.crt";
pub const CA_KEY: &str = "tls.key";
pub const PREVIOUS_CA_CERT: &str = "previous.crt";
pub const PREVIOUS_CA_KEY: &str = "previous.key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Trusting,
    Issuing,
}

impl Rotation {
    fn name(self) -> &'static str {
        match self {
            Rotation::Trusting => "trusting",
            Rotation::Issuing => "issuing",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "trusting" => Some(Rotation::Trusting),
            "issuing" => Some(Rotation::Issuing),
            _ => None,
        }
    }
}

/// What the operator's Secrets hold now (decoded).
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub ca: BTreeMap<String, String>,
    pub ca_annotations: BTreeMap<String, String>,
    pub brokers: BTreeMap<String, String>,
}

/// What one broker reports of its TLS (`GET /cluster/tls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerView {
    /// Subjects of the CAs it accepts peers from.
    pub trusts: Vec<String>,
    /// Issuers of the certificates its listeners serve.
    pub serves: Vec<String>,
}

/// The Secrets to write, and what to tell.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ca: BTreeMap<String, String>,
    pub ca_annotations: BTreeMap<String, String>,
    pub brokers: BTreeMap<String, String>,
    /// The CAs to trust, newest first (PEM).
    pub bundle: String,
    /// Events: reason and message.
    pub events: Vec<(&'static str, String)>,
    /// What a rotation under way waits for.
    pub progressing: Option<String>,
    pub status: TlsStatus,
}

/// `90d`, `2160h`, `30m` or `45s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(number.checked_mul(unit)?))
}

pub fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

pub fn rfc3339(unix_seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix_seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn pair(data: &BTreeMap<String, String>, cert: &str, key: &str) -> Option<KeyedCertificate> {
    let cert_pem = data.get(cert)?.clone();
    let key_pem = data.get(key)?.clone();
    inspect(&cert_pem).ok()?;
    Some(KeyedCertificate { cert_pem, key_pem })
}

/// Decide the CA, the brokers' certificates and the bundle for `brokers`
/// brokers (pods 0..brokers) at `now`. `observed`: what each broker
/// reports, when they could be asked.
pub fn plan(
    cluster: &IggyCluster,
    current: &Current,
    brokers: i32,
    now: SystemTime,
    observed: Option<&BTreeMap<i32, BrokerView>>,
) -> Result<Plan, CertificateError> {
    let spec =
        cluster.spec.tls().cloned().unwrap_or_else(|| {
            serde_json::from_value(serde_json::json!({})).expect("TLS defaults")
        });
    let ca_validity =
        parse_duration(&spec.ca_validity).unwrap_or(Duration::from_secs(1825 * 86_400));
    let mut planner = Planner {
        cluster,
        brokers,
        now,
        observed,
        inter_broker: spec.listeners.inter_broker,
        validity: parse_duration(&spec.validity).unwrap_or(Duration::from_secs(90 * 86_400)),
        renew_before: parse_duration(&spec.renew_before)
            .unwrap_or(Duration::from_secs(30 * 86_400)),
        ca_annotations: current.ca_annotations.clone(),
        events: Vec::new(),
        progressing: None,
    };
    let mut cas = planner.cas(current, ca_validity)?;
    planner.advance_rotation(&mut cas)?;
    planner.record_rotation(&cas);
    let (broker_data, broker_status) = planner.broker_certificates(current, cas.signer())?;
    planner.finish(cas, broker_data, broker_status)
}

/// The cluster's CAs: the newest, and while it replaces another, that one
/// and how far the replacement is.
struct Cas {
    ca: KeyedCertificate,
    previous: Option<KeyedCertificate>,
    rotation: Option<Rotation>,
    /// When the rotation's step started (Unix seconds).
    since: i64,
}

impl Cas {
    /// The CA that signs the brokers' certificates now: the old one until
    /// every broker trusts the new one.
    fn signer(&self) -> &KeyedCertificate {
        match (self.rotation, &self.previous) {
            (Some(Rotation::Trusting), Some(old)) => old,
            _ => &self.ca,
        }
    }
}

/// One [`plan`]'s inputs and what it has decided to tell so far.
struct Planner<'a> {
    cluster: &'a IggyCluster,
    brokers: i32,
    now: SystemTime,
    observed: Option<&'a BTreeMap<i32, BrokerView>>,
    inter_broker: bool,
    validity: Duration,
    renew_before: Duration,
    ca_annotations: BTreeMap<String, String>,
    events: Vec<(&'static str, String)>,
    progressing: Option<String>,
}

impl Planner<'_> {
    fn annotation(&self, key: &str) -> Option<String> {
        self.cluster.annotations().get(key).cloned()
    }

    /// The stored CAs (a new one when there is none), with a replacement
    /// started when the CA is due or [`ROTATE_CA_ANNOTATION`] asks.
    fn cas(&mut self, current: &Current, ca_validity: Duration) -> Result<Cas, CertificateError> {
        let ca_name = format!(
            "{}/{}",
            self.cluster.namespace().unwrap_or_default(),
            self.cluster.name_any()
        );
        let ca = match pair(&current.ca, CA_CERT, CA_KEY) {
            Some(ca) => ca,
            None => {
                self.events.push((
                    "CAIssued",
                    format!(
                        "made the cluster's CA (Secret {})",
                        names::ca_secret(self.cluster)
                    ),
                ));
                // The annotations ask for nothing on a fresh CA.
                for (key, handled) in [
                    (RENEW_ANNOTATION, RENEWED_FOR_ANNOTATION),
                    (ROTATE_CA_ANNOTATION, ROTATED_FOR_ANNOTATION),
                ] {
                    if let Some(value) = self.annotation(key) {
                        self.ca_annotations.insert(handled.into(), value);
                    }
                }
                self.ca_annotations.remove(ROTATION_ANNOTATION);
                self.ca_annotations.remove(ROTATION_SINCE_ANNOTATION);
                new_ca(&ca_name, self.now, ca_validity)?
            }
        };
        let previous = pair(&current.ca, PREVIOUS_CA_CERT, PREVIOUS_CA_KEY);
        let rotation = self
            .ca_annotations
            .get(ROTATION_ANNOTATION)
            .and_then(|r| Rotation::parse(r))
            .filter(|_| previous.is_some());
        let since = self
            .ca_annotations
            .get(ROTATION_SINCE_ANNOTATION)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(unix(self.now));
        let mut cas = Cas {
            ca,
            previous,
            rotation,
            since,
        };

        // Start replacing the CA?
        let ca_info = inspect(&cas.ca.cert_pem)?;
        let forced = self
            .annotation(ROTATE_CA_ANNOTATION)
            .filter(|value| self.ca_annotations.get(ROTATED_FOR_ANNOTATION) != Some(value));
        let due = unix(self.now) + self.renew_before.as_secs() as i64 >= ca_info.not_after;
        if cas.rotation.is_none() && (due || forced.is_some()) {
            let why = if forced.is_some() {
                format!("{ROTATE_CA_ANNOTATION} asked for it")
            } else {
                format!("it expires at {}", rfc3339(ca_info.not_after))
            };
            let replaced = std::mem::replace(&mut cas.ca, new_ca(&ca_name, self.now, ca_validity)?);
            cas.previous = Some(replaced);
            cas.rotation = Some(Rotation::Trusting);
            cas.since = unix(self.now);
            if let Some(value) = forced {
                self.ca_annotations
                    .insert(ROTATED_FOR_ANNOTATION.into(), value);
            }
            self.events.push((
                "CARotationStarted",
                format!(
                    "replacing the cluster's CA ({why}): the new CA is trusted beside the old one; \
                     brokers get certificates of it once every broker trusts both"
                ),
            ));
        }
        Ok(cas)
    }

    /// How many of the brokers pass `check`, and whether all do (none
    /// known to when they could not be asked).
    fn everyone(&self, check: impl Fn(&BrokerView) -> bool) -> (usize, bool) {
        let Some(observed) = self.observed else {
            return (0, false);
        };
        let agreeing = (0..self.brokers)
            .filter(|id| observed.get(id).is_some_and(&check))
            .count();
        (agreeing, agreeing == self.brokers as usize)
    }

    /// Move a CA replacement under way to its next step once the brokers
    /// are there, or say what it waits for.
    fn advance_rotation(&mut self, cas: &mut Cas) -> Result<(), CertificateError> {
        let new_subject = inspect(&cas.ca.cert_pem)?.subject;
        match cas.rotation {
            Some(Rotation::Trusting) => {
                let waited = unix(self.now) - cas.since >= MIN_TRUST_OVERLAP.as_secs() as i64;
                let (trusting, all) = if self.inter_broker {
                    self.everyone(|b| b.trusts.contains(&new_subject))
                } else {
                    (self.brokers as usize, true)
                };
                if waited && all {
                    cas.rotation = Some(Rotation::Issuing);
                    cas.since = unix(self.now);
                    self.events.push((
                        "CARotationIssuing",
                        "every broker trusts the new CA: issuing the brokers' certificates from it"
                            .into(),
                    ));
                } else {
                    self.progressing = Some(format!(
                        "replacing the CA: both CAs are published; waiting for every broker to trust \
                         the new one ({trusting} of {} do){}",
                        self.brokers,
                        if waited {
                            ""
                        } else {
                            " and for mounted copies of the bundle to catch up"
                        }
                    ));
                }
            }
            Some(Rotation::Issuing) => {
                let (serving, all) = self.everyone(|b| {
                    !b.serves.is_empty() && b.serves.iter().all(|i| *i == new_subject)
                });
                if all {
                    cas.rotation = None;
                    cas.previous = None;
                    self.events.push((
                        "CARotationCompleted",
                        "every broker serves a certificate of the new CA: the old CA is no longer trusted"
                            .into(),
                    ));
                } else {
                    self.progressing = Some(format!(
                        "replacing the CA: waiting for every broker to serve its certificate of the \
                         new CA ({serving} of {} do)",
                        self.brokers
                    ));
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Where a CA replacement stands, on the CA Secret's annotations.
    fn record_rotation(&mut self, cas: &Cas) {
        match cas.rotation {
            Some(step) => {
                self.ca_annotations
                    .insert(ROTATION_ANNOTATION.into(), step.name().into());
                self.ca_annotations
                    .insert(ROTATION_SINCE_ANNOTATION.into(), cas.since.to_string());
            }
            None => {
                self.ca_annotations.remove(ROTATION_ANNOTATION);
                self.ca_annotations.remove(ROTATION_SINCE_ANNOTATION);
            }
        }
    }

    /// Each broker's certificate and key, kept or issued by `signer`, and
    /// their expiries for the status.
    fn broker_certificates(
        &mut self,
        current: &Current,
        signer: &KeyedCertificate,
    ) -> Result<(BTreeMap<String, String>, Vec<BrokerCertificate>), CertificateError> {
        let signer_subject = inspect(&signer.cert_pem)?.subject;
        let renew_all = self
            .annotation(RENEW_ANNOTATION)
            .filter(|value| self.ca_annotations.get(RENEWED_FOR_ANNOTATION) != Some(value));
        let renew_before = self.renew_before.as_secs() as i64;
        let mut issued = Vec::new();
        let mut broker_data = BTreeMap::new();
        let mut broker_status = Vec::new();
        for ordinal in 0..self.brokers {
            let pod = format!("{}-{ordinal}", names::statefulset(self.cluster));
            let (cert_key, key_key) = (format!("{pod}.crt"), format!("{pod}.key"));
            let wanted = tls::broker_names(self.cluster, ordinal);
            let kept = pair(&current.brokers, &cert_key, &key_key).filter(|existing| {
                let info: CertificateInfo = inspect(&existing.cert_pem).expect("checked by pair");
                renew_all.is_none()
                    && info.issuer == signer_subject
                    && info.names == wanted
                    && unix(self.now) + renew_before < info.not_after
            });
            let cert = match kept {
                Some(cert) => cert,
                None => {
                    issued.push(pod.clone());
                    issue(signer, &pod, &wanted, self.now, self.validity)?
                }
            };
            broker_status.push(BrokerCertificate {
                id: ordinal,
                not_after: rfc3339(inspect(&cert.cert_pem)?.not_after),
            });
            broker_data.insert(cert_key, cert.cert_pem);
            broker_data.insert(key_key, cert.key_pem);
        }
        if let Some(value) = renew_all {
            self.ca_annotations
                .insert(RENEWED_FOR_ANNOTATION.into(), value);
        }
        if !issued.is_empty() {
            self.events.push((
                "CertificatesIssued",
                format!("issued TLS certificates for {}", issued.join(", ")),
            ));
        }
        Ok((broker_data, broker_status))
    }

    /// The plan: the CA Secret, the brokers' Secret with the bundle of
    /// every CA to trust (newest first), and the status.
    fn finish(
        self,
        cas: Cas,
        mut broker_data: BTreeMap<String, String>,
        broker_status: Vec<BrokerCertificate>,
    ) -> Result<Plan, CertificateError> {
        let mut bundle = cas.ca.cert_pem.clone();
        let mut ca_not_after = vec![rfc3339(inspect(&cas.ca.cert_pem)?.not_after)];
        let mut ca_data = BTreeMap::from([
            (CA_CERT.to_string(), cas.ca.cert_pem.clone()),
            (CA_KEY.to_string(), cas.ca.key_pem.clone()),
        ]);
        if let Some(old) = &cas.previous {
            bundle.push_str(&old.cert_pem);
            ca_not_after.push(rfc3339(inspect(&old.cert_pem)?.not_after));
            ca_data.insert(PREVIOUS_CA_CERT.into(), old.cert_pem.clone());
            ca_data.insert(PREVIOUS_CA_KEY.into(), old.key_pem.clone());
        }
        broker_data.insert(tls::CA_BUNDLE_KEY.into(), bundle.clone());
        Ok(Plan {
            ca: ca_data,
            ca_annotations: self.ca_annotations,
            brokers: broker_data,
            bundle,
            events: self.events,
            progressing: self.progressing,
            status: TlsStatus {
                ca_not_after,
                brokers: broker_status,
                ca_bundle: Some(names::ca_bundle(self.cluster)),
                connection: Some(tls::connection_options(self.cluster)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    const DAY: Duration = Duration::from_secs(86_400);

    fn tls_cluster(replicas: i32) -> IggyCluster {
        let mut c = cluster(replicas);
        c.spec.tls = Some(
            serde_json::from_value(serde_json::json!({
                "validity": "10d", "renewBefore": "2d", "caValidity": "30d"
            }))
            .unwrap(),
        );
        c
    }

    fn after(plan: &Plan) -> Current {
        Current {
            ca: plan.ca.clone(),
            ca_annotations: plan.ca_annotations.clone(),
            brokers: plan.brokers.clone(),
        }
    }

    fn subject(pem: &str) -> String {
        inspect(pem).unwrap().subject
    }

    /// Every broker trusting `trusts` and serving certificates of `serves`.
    fn all(brokers: i32, trusts: &[&str], serves: &str) -> BTreeMap<i32, BrokerView> {
        (0..brokers)
            .map(|id| {
                (
                    id,
                    BrokerView {
                        trusts: trusts.iter().map(|s| s.to_string()).collect(),
                        serves: vec![serves.to_string()],
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_new_cluster_gets_a_ca_and_a_certificate_per_broker_then_nothing_changes() {
        let c = tls_cluster(3);
        let t0 = SystemTime::now();
        let first = plan(&c, &Current::default(), 3, t0, None).unwrap();
        assert_eq!(first.events[0].0, "CAIssued");
        assert_eq!(first.events[1].0, "CertificatesIssued");
        for pod in ["demo-0", "demo-1", "demo-2"] {
            let cert = &first.brokers[&format!("{pod}.crt")];
            assert_eq!(inspect(cert).unwrap().issuer, subject(&first.ca[CA_CERT]));
            assert!(first.brokers.contains_key(&format!("{pod}.key")));
        }
        assert_eq!(first.brokers[tls::CA_BUNDLE_KEY], first.ca[CA_CERT]);
        assert_eq!(first.status.brokers.len(), 3);
        let again = plan(&c, &after(&first), 3, t0 + DAY, None).unwrap();
        assert!(again.events.is_empty(), "{:?}", again.events);
        assert_eq!(again.brokers, first.brokers);
        assert_eq!(again.ca, first.ca);
    }

    #[test]
    fn certificates_are_renewed_before_they_expire_for_new_names_and_on_request() {
        let mut c = tls_cluster(2);
        let t0 = SystemTime::now();
        let first = plan(&c, &Current::default(), 2, t0, None).unwrap();
        // 10 days' validity, renewed 2 days ahead: not at day 7, at day 8.
        let day7 = plan(&c, &after(&first), 2, t0 + 7 * DAY, None).unwrap();
        assert_eq!(day7.brokers, first.brokers);
        let day8 = plan(
            &c,
            &after(&first),
            2,
            t0 + 8 * DAY + Duration::from_secs(60),
            None,
        )
        .unwrap();
        assert_ne!(day8.brokers["demo-0.crt"], first.brokers["demo-0.crt"]);
        assert_eq!(day8.events[0].0, "CertificatesIssued");
        // A scaled-up cluster: only the new broker's certificate is made.
        let grown = plan(&c, &after(&day8), 3, t0 + 8 * DAY, None).unwrap();
        assert_eq!(grown.brokers["demo-1.crt"], day8.brokers["demo-1.crt"]);
        assert!(grown.events[0].1.ends_with("demo-2"), "{:?}", grown.events);
        // A new name: every certificate carries it.
        c.spec.tls.as_mut().unwrap().extra_sans = vec!["iggy.example.com".into()];
        let renamed = plan(&c, &after(&grown), 3, t0 + 8 * DAY, None).unwrap();
        assert!(
            inspect(&renamed.brokers["demo-2.crt"])
                .unwrap()
                .names
                .contains(&"iggy.example.com".to_string())
        );
        // The annotation renews all once per value.
        c.metadata
            .annotations
            .get_or_insert_default()
            .insert(RENEW_ANNOTATION.into(), "now".into());
        let forced = plan(&c, &after(&renamed), 3, t0 + 8 * DAY, None).unwrap();
        assert_ne!(forced.brokers["demo-0.crt"], renamed.brokers["demo-0.crt"]);
        let settled = plan(&c, &after(&forced), 3, t0 + 8 * DAY, None).unwrap();
        assert_eq!(settled.brokers, forced.brokers);
    }

    #[test]
    fn a_ca_is_replaced_in_steps_that_never_leave_a_broker_untrusted() {
        let c = tls_cluster(2);
        let t0 = SystemTime::now();
        let first = plan(&c, &Current::default(), 2, t0, None).unwrap();
        let old = subject(&first.ca[CA_CERT]);
        // 30 days' CA, replaced 2 days ahead.
        let t1 = t0 + 28 * DAY + Duration::from_secs(60);
        let trusting = plan(&c, &after(&first), 2, t1, Some(&all(2, &[&old], &old))).unwrap();
        let new = subject(&trusting.ca[CA_CERT]);
        assert_ne!(new, old);
        assert!(trusting.events.iter().any(|e| e.0 == "CARotationStarted"));
        assert_eq!(trusting.ca_annotations[ROTATION_ANNOTATION], "trusting");
        assert_eq!(
            trusting.bundle,
            format!("{}{}", trusting.ca[CA_CERT], first.ca[CA_CERT]),
            "both CAs, the new one first"
        );
        // The old CA still signs (the brokers' certificates, long expired
        // by now, are renewed from it): brokers that trust only the old CA
        // accept them.
        for pod in ["demo-0", "demo-1"] {
            let cert = &trusting.brokers[&format!("{pod}.crt")];
            assert_eq!(inspect(cert).unwrap().issuer, old);
        }
        assert!(trusting.progressing.is_some());

        // Every broker trusts both, but the overlap has not passed.
        let both = all(2, &[&old, &new], &old);
        let early = plan(
            &c,
            &after(&trusting),
            2,
            t1 + Duration::from_secs(30),
            Some(&both),
        )
        .unwrap();
        assert_eq!(early.ca_annotations[ROTATION_ANNOTATION], "trusting");
        // Past the overlap, one broker not there yet.
        let t2 = t1 + MIN_TRUST_OVERLAP;
        let mut one_behind = both.clone();
        one_behind.get_mut(&1).unwrap().trusts = vec![old.clone()];
        let waiting = plan(&c, &after(&early), 2, t2, Some(&one_behind)).unwrap();
        assert_eq!(waiting.ca_annotations[ROTATION_ANNOTATION], "trusting");
        assert!(waiting.progressing.as_ref().unwrap().contains("1 of 2"));
        // Nobody to ask: no progress either.
        let blind = plan(&c, &after(&early), 2, t2, None).unwrap();
        assert_eq!(blind.ca_annotations[ROTATION_ANNOTATION], "trusting");

        // All there: certificates of the new CA.
        let issuing = plan(&c, &after(&waiting), 2, t2, Some(&both)).unwrap();
        assert_eq!(issuing.ca_annotations[ROTATION_ANNOTATION], "issuing");
        assert_eq!(inspect(&issuing.brokers["demo-0.crt"]).unwrap().issuer, new);
        assert!(
            issuing.bundle.contains(&first.ca[CA_CERT]),
            "old CA still trusted"
        );
        // Until every broker serves one, the old CA stays.
        let mut half = all(2, &[&old, &new], &new);
        half.get_mut(&0).unwrap().serves = vec![old.clone()];
        let still = plan(&c, &after(&issuing), 2, t2, Some(&half)).unwrap();
        assert!(still.bundle.contains(&first.ca[CA_CERT]));
        let done = plan(
            &c,
            &after(&still),
            2,
            t2,
            Some(&all(2, &[&old, &new], &new)),
        )
        .unwrap();
        assert!(done.events.iter().any(|e| e.0 == "CARotationCompleted"));
        assert_eq!(done.bundle, done.ca[CA_CERT]);
        assert!(!done.ca.contains_key(PREVIOUS_CA_CERT));
        assert!(!done.ca_annotations.contains_key(ROTATION_ANNOTATION));
        assert_eq!(done.brokers["demo-0.crt"], issuing.brokers["demo-0.crt"]);
    }

    #[test]
    fn the_rotate_annotation_replaces_the_ca_once_per_value() {
        let mut c = tls_cluster(1);
        let t0 = SystemTime::now();
        let first = plan(&c, &Current::default(), 1, t0, None).unwrap();
        c.metadata
            .annotations
            .get_or_insert_default()
            .insert(ROTATE_CA_ANNOTATION.into(), "2026-12-03".into());
        let rotating = plan(&c, &after(&first), 1, t0, None).unwrap();
        assert_eq!(rotating.ca_annotations[ROTATION_ANNOTATION], "trusting");
        assert_eq!(
            rotating.ca_annotations[ROTATED_FOR_ANNOTATION],
            "2026-12-03"
        );
        let old = subject(&first.ca[CA_CERT]);
        let new = subject(&rotating.ca[CA_CERT]);
        let t1 = t0 + MIN_TRUST_OVERLAP;
        let issuing = plan(
            &c,
            &after(&rotating),
            1,
            t1,
            Some(&all(1, &[&old, &new], &old)),
        )
        .unwrap();
        let done = plan(&c, &after(&issuing), 1, t1, Some(&all(1, &[&new], &new))).unwrap();
        assert!(!done.ca_annotations.contains_key(ROTATION_ANNOTATION));
        // The same value again starts nothing.
        let after_done = plan(&c, &after(&done), 1, t1, None).unwrap();
        assert_eq!(after_done.ca, done.ca);
    }

    #[test]
    fn durations_read_like_cert_managers() {
        assert_eq!(
            parse_duration("2160h"),
            Some(Duration::from_secs(2160 * 3600))
        );
        assert_eq!(parse_duration("90d"), Some(90 * DAY));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("10w"), None);
    }
}
