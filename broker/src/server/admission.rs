//! Which new client connections are let in: at most
//! `limits.max_connections` in all, and at most
//! `limits.max_connections_per_address` from one IP address, across TCP,
//! WebSocket and QUIC. A connection holds its [`Admitted`] until it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    total: Arc<Semaphore>,
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    TooManyFromAddress(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full => write!(f, "connection limit reached (limits.max_connections)"),
            Refused::TooManyFromAddress(limit) => write!(
                f,
                "{limit} connections from this address already (limits.max_connections_per_address)"
            ),
        }
    }
}

/// A connection let in; dropping it makes room.
pub struct Admitted {
    admission: Arc<Admission>,
    address: IpAddr,
    _total: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(total: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(total)),
            per_address,
            open: Mutex::default(),
        })
    }

    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Admitted, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&address).is_some_and(|n| *n >= self.per_address) {
            return Err(Refused::TooManyFromAddress(self.per_address));
        }
        // Only an admitted address gets an entry (refusals leave none).
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        *open.entry(address).or_default() += 1;
        Ok(Admitted {
            admission: self.clone(),
            address,
            _total: total,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_share_and_the_others_the_rest() {
        let admission = Admission::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(
            admission.admit(a).err(),
            Some(Refused::TooManyFromAddress(2))
        );
        let _third = admission.admit(b).unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(admission.admit(c).err(), Some(Refused::Full));
        assert!(!admission.open.lock().unwrap().contains_key(&c));
        drop(first);
        assert!(admission.admit(a).is_ok());
        assert!(admission.open.lock().unwrap().len() <= 2);
    }
}
