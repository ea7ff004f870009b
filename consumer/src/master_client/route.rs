//! The master client's route: every attempt to the master ZooKeeper names now, waiting (within
//! the switch-over bound) for a new one when there is none or the call may not try the same one
//! again, and telling the call when ZooKeeper names another master (see the parent module for
//! the rule).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc_registry::MasterWatch;

use crate::balance::Endpoint;
use crate::balance::channel::{BoxFuture, Route};
use crate::balance::ejection::{AttemptStart, Strike};
use crate::tls::ConsumerTls;

/// Channels kept for addresses other than the current master (a master that comes back).
const KEPT_CHANNELS: usize = 8;

/// The master client's route: the current master, waiting (bounded) for a switch-over.
#[derive(Debug)]
pub(super) struct MasterRoute {
    masters: watch::Receiver<Option<String>>,
    /// The watch behind `masters`, shared with the `MasterClient`: a channel kept after its
    /// client was dropped still follows the master.
    watch: Arc<MasterWatch>,
    /// Endpoints by address, so a master that comes back keeps its connection.
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    switch_over_timeout: Duration,
    retry_pause: Duration,
    /// TLS for every master, if the HA servers serve it.
    tls: Option<ConsumerTls>,
}

impl MasterRoute {
    /// The route following `watch`'s master, with the client's bound, pause and TLS.
    pub(super) fn new(
        watch: Arc<MasterWatch>,
        switch_over_timeout: Duration,
        retry_pause: Duration,
        tls: Option<ConsumerTls>,
    ) -> MasterRoute {
        MasterRoute {
            masters: watch.subscribe(),
            watch,
            endpoints: Mutex::new(HashMap::new()),
            switch_over_timeout,
            retry_pause,
            tls,
        }
    }

    fn endpoint(&self, address: &str) -> Option<Arc<Endpoint>> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(endpoint) = endpoints.get(address) {
            return Some(endpoint.clone());
        }
        let endpoint = Arc::new(Endpoint::for_address(address, self.tls.as_ref())?);
        if endpoints.len() >= KEPT_CHANNELS {
            endpoints.clear();
        }
        endpoints.insert(address.to_owned(), endpoint.clone());
        Some(endpoint)
    }
}

impl Route for MasterRoute {
    fn next<'a>(
        &'a self,
        tried: &'a [Arc<Endpoint>],
        started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::from_std(started + self.switch_over_timeout);
            let mut masters = self.masters.clone();
            let mut paused = tried.is_empty();
            loop {
                let master = masters.borrow_and_update().clone();
                match master {
                    // The first attempt, a new master, or the same one after a pause.
                    Some(address)
                        if paused || tried.last().map(|e| e.node()) != Some(address.as_str()) =>
                    {
                        return self.endpoint(&address);
                    }
                    Some(_) => {
                        // The master just failed: give the master watch a moment to report a
                        // switch-over before trying it again.
                        let pause = tokio::time::Instant::now() + self.retry_pause;
                        if tokio::time::Instant::now() >= deadline {
                            return None;
                        }
                        let pause = pause.min(deadline);
                        if let Ok(Err(_)) = tokio::time::timeout_at(pause, masters.changed()).await
                        {
                            // No watch left to report a switch-over (it cannot happen while
                            // the route holds it): still pause, never spin.
                            tokio::time::sleep_until(pause).await;
                        }
                        paused = true;
                    }
                    None => {
                        // No master right now: wait for one, within the bound.
                        match tokio::time::timeout_at(deadline, masters.changed()).await {
                            Ok(Ok(())) => paused = true,
                            _ => return None,
                        }
                    }
                }
            }
        })
    }

    fn record_failure(&self, _: &Endpoint, _: AttemptStart, _: Strike) {
        // One endpoint at a time: nothing to eject it in favour of.
    }

    /// A master that TLS refused (an untrusted certificate, or one that refuses this client)
    /// is not worth trying again until the switch-over bound: it would refuse the same way,
    /// some 17 handshakes a second for 15 s. The call fails at once with the reason.
    fn gives_up_after(&self, error: &(dyn std::error::Error + 'static)) -> bool {
        let mut source = Some(error);
        while let Some(level) = source {
            if level
                .downcast_ref::<crate::DialError>()
                .is_some_and(crate::DialError::is_tls_refusal)
            {
                return true;
            }
            source = level.source();
        }
        false
    }

    /// No master to call: nobody holds the node, or (named) what it holds is no address.
    fn no_endpoint(&self) -> tonic::Status {
        tonic::Status::unavailable(self.watch.no_master_error().to_string())
    }

    /// A call that stops after an attempt on `last`: its bound passed with no other master
    /// named, `last` still named or the node vacant (a paused or cut-off master is replaced
    /// only when its session expires, and the standby may wait out another session first).
    fn gave_up_on(&self, last: &Endpoint) -> Option<String> {
        let master = self.masters.borrow().clone();
        let now = match master {
            Some(address) if address == last.node() => format!("{address} still named"),
            Some(_) => return None,
            None => self.watch.no_master_error().to_string(),
        };
        Some(format!(
            "ZooKeeper named no other master within the switch-over bound ({:?}) ({now}); a \
             silent master is replaced only when its session expires (the servers' session \
             timeout, up to twice it when the standby must also wait out another session): \
             raise MasterClientConfig::switch_over_timeout above that, or see why the master is \
             silent",
            self.switch_over_timeout
        ))
    }

    /// Resolves once ZooKeeper names another master than `endpoint` (no master at all is not
    /// enough: the same one may come back, and the call has nowhere else to go yet).
    fn superseded<'a>(&'a self, endpoint: &'a Endpoint) -> Option<BoxFuture<'a, ()>> {
        let mut masters = self.masters.clone();
        Some(Box::pin(async move {
            let other = |master: &Option<String>| names_other(master, endpoint);
            if masters.wait_for(other).await.is_err() {
                // No watch left to report a switch-over (it cannot happen while the route
                // holds it): the attempt's own limits end it.
                std::future::pending::<()>().await;
            }
        }))
    }

    fn switched_from(&self, from: &Endpoint) -> Option<bool> {
        Some(names_other(&self.masters.borrow(), from))
    }

    fn switch_over<'a>(
        &'a self,
        from: &'a Endpoint,
        started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::from_std(started + self.switch_over_timeout);
            let mut masters = self.masters.clone();
            let other = |master: &Option<String>| names_other(master, from);
            let next = match tokio::time::timeout_at(deadline, masters.wait_for(other)).await {
                Ok(Ok(master)) => master.clone(),
                _ => None,
            };
            self.endpoint(&next?)
        })
    }
}

/// Whether `master` is an address other than `endpoint`'s.
fn names_other(master: &Option<String>, endpoint: &Endpoint) -> bool {
    master
        .as_deref()
        .is_some_and(|address| address != endpoint.node())
}
