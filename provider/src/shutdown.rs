//! Stopping on a signal, for programs: [`StopSignals`] (SIGTERM and Ctrl-C, heard from the
//! moment it listens, so a second Ctrl-C during a stop is never missed). The library's own stops
//! take a future (`Provider::run_until`, `HaServer::run_until`), as mini-redis's
//! `server::run(listener, shutdown)` does; only programs need signals.

use crate::error::{Error, Result};

/// SIGTERM and SIGINT (Ctrl-C), heard from the moment of [`StopSignals::listen`] on, so a
/// second Ctrl-C during a stop is never missed.
///
/// ```no_run
/// # async fn demo(provider: zoorpc_provider::Provider) -> Result<(), zoorpc_provider::Error> {
/// use zoorpc_provider::StopSignals;
/// let mut signals = StopSignals::listen()?; // before anything can take long
/// signals.recv().await; // the first: stop gracefully (deregister, drain) ...
/// tokio::select! {
///     stopped = provider.shutdown() => stopped?,
///     () = signals.recv() => std::process::exit(130), // ... the second: stop now
/// }
/// # Ok(()) }
/// ```
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Starts listening (needs a Tokio runtime).
    pub fn listen() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
