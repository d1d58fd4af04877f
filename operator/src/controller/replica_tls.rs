//! Switching inter-broker TLS on or off under a running cluster.
//!
//! A broker that requires TLS on the replica port and one that speaks
//! plain TCP cannot talk, so a single roll from one to the other would
//! stall at its first broker. The switch takes two rolls instead:
//! 1. every broker is restarted *switching*: it serves TLS and accepts
//!    plain TCP on the replica port, and dials TLS first, plain TCP when
//!    the peer does not answer TLS (`cluster.tls.accept_plaintext`), so it
//!    talks to brokers of both kinds;
//! 2. once every pod runs that, every broker is restarted as asked: TLS
//!    required, or off.
//!
//! The decision is pure; the caller reads what the StatefulSet runs and
//! whether its roll is done.

use crate::resources::tls::{REPLICA_TLS_ENABLED_ENV, REPLICA_TLS_PLAINTEXT_ENV};
use k8s_openapi::api::apps::v1::StatefulSet;

/// How the brokers of a StatefulSet treat TLS on the replica port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaTls {
    Off,
    /// TLS served and tried first, plain TCP accepted too.
    Switching,
    Required,
}

impl ReplicaTls {
    /// What `sts`'s broker container is configured for.
    pub fn of(sts: &StatefulSet) -> Self {
        let env = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == "broker"))
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let on = |name: &str| {
            env.iter()
                .any(|e| e.name == name && e.value.as_deref() == Some("true"))
        };
        match (on(REPLICA_TLS_ENABLED_ENV), on(REPLICA_TLS_PLAINTEXT_ENV)) {
            (false, _) => Self::Off,
            (true, true) => Self::Switching,
            (true, false) => Self::Required,
        }
    }
}

/// What the brokers should run next: `wanted` (TLS required or not), given
/// what the StatefulSet runs now (`None` for a new cluster) and whether
/// every broker pod runs that already (`rolled`).
pub fn next(wanted: bool, current: Option<ReplicaTls>, rolled: bool) -> ReplicaTls {
    let wanted = if wanted {
        ReplicaTls::Required
    } else {
        ReplicaTls::Off
    };
    match current {
        None => wanted,
        Some(current) if current == wanted => wanted,
        Some(ReplicaTls::Switching) if rolled => wanted,
        Some(_) => ReplicaTls::Switching,
    }
}

#[cfg(test)]
mod tests {
    use super::ReplicaTls::*;
    use super::*;

    #[test]
    fn a_new_cluster_starts_as_asked() {
        assert_eq!(next(true, None, false), Required);
        assert_eq!(next(false, None, false), Off);
    }

    #[test]
    fn nothing_changes_when_the_brokers_run_what_is_asked() {
        assert_eq!(next(true, Some(Required), false), Required);
        assert_eq!(next(false, Some(Off), true), Off);
    }

    #[test]
    fn turning_it_on_or_off_goes_through_switching_until_every_pod_runs_that() {
        for (wanted, from) in [(true, Off), (false, Required)] {
            assert_eq!(next(wanted, Some(from), true), Switching);
            assert_eq!(next(wanted, Some(Switching), false), Switching);
            assert_eq!(
                next(wanted, Some(Switching), true),
                if wanted { Required } else { Off }
            );
        }
    }

    #[test]
    fn changing_its_mind_mid_switch_still_waits_for_the_roll() {
        // On was asked, then off again before the first roll finished.
        assert_eq!(next(false, Some(Switching), false), Switching);
        assert_eq!(next(false, Some(Switching), true), Off);
    }
}
