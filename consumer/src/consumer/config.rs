//! `ConsumerConfig`: where the providers are (ZooKeeper, base path), how calls are balanced,
//! and where the last known list is kept on disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zoorpc_registry::{CuratorService, NodeFormat, ZkCredential};

use crate::balance::{DEFAULT_BUFFER_LIMIT, EjectionPolicy, RetryBudget, Strategy};
use crate::tls::ConsumerTls;

/// How to build a consumer: [`ConsumerConfig::new`] and the builder methods, as tonic's
/// `Endpoint` is built. The fields can be read and set; the struct is `#[non_exhaustive]`, so a
/// setting added later breaks no one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// The base path providers register under, e.g. `/registry` (in the Curator layout the
    /// service's path, `/services/<name>`).
    pub base_path: String,
    /// How each child of the base path is read: zoorpc's URL (the default) or Curator's
    /// `ServiceInstance` JSON ([`ConsumerConfig::new_curator`]).
    pub format: NodeFormat,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long `connect` waits for ZooKeeper.
    pub connect_timeout: Duration,
    /// How a request's endpoint is picked. Default [`Strategy::Random`] (weighted).
    pub strategy: Strategy,
    /// When failures eject an endpoint (connection failures; `UNAVAILABLE` answers in a row).
    pub ejection: EjectionPolicy,
    /// Request bodies up to this size are kept so that a request can be sent again elsewhere;
    /// larger (or still-streaming) ones are committed to their first endpoint. Default 256 KiB.
    pub buffer_limit: usize,
    /// Retry budget of maybe-sent retries (Finagle's: 20 % of requests plus 10 a second),
    /// shared by every channel of the consumer.
    pub retry_budget: Arc<RetryBudget>,
    /// The ZooKeeper digest identity (`user:password`) to authenticate with. Reading needs
    /// none (zoorpc's nodes are readable by anyone); `None` by default.
    pub zk_auth: Option<ZkCredential>,
    /// Where to keep the last known list on disk (`None`, the default: nowhere). Written
    /// atomically on every change; read at start only when ZooKeeper cannot be reached within
    /// the connect timeout.
    pub snapshot_path: Option<PathBuf>,
    /// How `https://` providers are called: the CAs trusted, an optional client certificate.
    /// `None` (the default): `https://` providers are not called (their calls fail naming the
    /// missing setting), never in plaintext.
    pub tls: Option<ConsumerTls>,
    /// The seed of the random picking rules (random, least-loaded): with one, picks made one
    /// after another are the same in every run (a test's statistics are deterministic; the
    /// threads that pick share one counter, so it is for tests and reproductions rather than a
    /// busy consumer). `None` (the default): each thread's own generator, seeded by the system.
    /// A rule of your own ([`Strategy::Custom`]) and the retry backoff's jitter keep their own
    /// randomness.
    pub rng_seed: Option<u64>,
}

impl ConsumerConfig {
    /// Defaults: 10 s session timeout, 10 s connect timeout, weighted random picking, ejection
    /// for 1 s doubling to 30 s per consecutive ejection (at most half the endpoints; five
    /// `UNAVAILABLE` answers in a row: 1 s), 256 KiB buffers, Finagle's budget.
    /// Nothing is checked here: `Consumer::connect_with` refuses a bad connect string or base path.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc_consumer::{ConsumerConfig, EjectionPolicy, Strategy};
    /// let config = ConsumerConfig::new("127.0.0.1:2181", "/services/echo")
    ///     .strategy(Strategy::LeastLoaded)
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .ejection(EjectionPolicy::DEFAULT.with_consecutive_unavailable(0))
    ///     .snapshot_path("/var/lib/echo-client/providers");
    /// assert_eq!(config.buffer_limit, 256 * 1024);
    /// assert!(matches!(config.strategy, Strategy::LeastLoaded));
    /// assert_eq!(config.ejection.consecutive_unavailable, 0);
    /// ```
    pub fn new(zk: impl Into<String>, base_path: impl Into<String>) -> Self {
        ConsumerConfig {
            zk: zk.into(),
            base_path: base_path.into(),
            format: NodeFormat::Url,
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            strategy: Strategy::default(),
            ejection: EjectionPolicy::default(),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            retry_budget: Arc::new(RetryBudget::default()),
            zk_auth: None,
            snapshot_path: None,
            tls: None,
            rng_seed: None,
        }
    }

    /// A config as [`ConsumerConfig::new`]'s, calling the instances of `service` in the layout
    /// of Apache Curator's service discovery and Spring Cloud Zookeeper (`<base>/<name>/<id>`
    /// holding Curator's JSON; see [`zoorpc_registry::curator`] for the address, port and
    /// weight each is called with). An error if the service's name or base makes no path.
    ///
    /// ```
    /// use zoorpc_consumer::ConsumerConfig;
    /// use zoorpc_registry::{CuratorService, NodeFormat};
    /// let config = ConsumerConfig::new_curator("127.0.0.1:2181", &CuratorService::new("greeter"))?;
    /// assert_eq!(config.base_path, "/services/greeter");
    /// assert_eq!(config.format, NodeFormat::Curator);
    /// # Ok::<(), zoorpc_registry::Error>(())
    /// ```
    pub fn new_curator(
        zk: impl Into<String>,
        service: &CuratorService,
    ) -> Result<Self, zoorpc_registry::Error> {
        let mut config = ConsumerConfig::new(zk, service.path()?);
        config.format = NodeFormat::Curator;
        Ok(config)
    }

    /// This config with another picking strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// This config with another ZooKeeper session timeout.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// This config waiting at most `timeout` for ZooKeeper at connect.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// This config with another ejection policy.
    pub fn ejection(mut self, policy: EjectionPolicy) -> Self {
        self.ejection = policy;
        self
    }

    /// This config keeping request bodies up to `bytes` for a retry elsewhere.
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// This config with another retry budget (one may be shared by several consumers).
    pub fn retry_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.retry_budget = budget;
        self
    }

    /// This config authenticating to ZooKeeper as `credential`.
    pub fn zk_auth(mut self, credential: ZkCredential) -> Self {
        self.zk_auth = Some(credential);
        self
    }

    /// This config keeping the last known list at `path` (see [`ConsumerConfig::snapshot_path`]).
    pub fn snapshot_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.snapshot_path = Some(path.into());
        self
    }

    /// This config picking with random numbers from `seed`'s sequence (see
    /// [`ConsumerConfig::rng_seed`]), as tower's `Balance::from_rng`.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }

    /// This config calling `https://` providers with `tls`.
    pub fn tls(mut self, tls: ConsumerTls) -> Self {
        self.tls = Some(tls);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each builder method sets its own setting and no other.
    #[test]
    fn each_builder_sets_its_setting() {
        let budget = Arc::new(RetryBudget::new(1, 2, Duration::from_secs(3)));
        let credential = ZkCredential::parse("app:secret").unwrap();
        let config = ConsumerConfig::new("127.0.0.1:2181", "/services/echo")
            .strategy(Strategy::First)
            .session_timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(4))
            .ejection(EjectionPolicy::DEFAULT.with_max_ejection_percent(10))
            .buffer_limit(5)
            .retry_budget(budget.clone())
            .zk_auth(credential.clone())
            .snapshot_path("/var/lib/echo/providers")
            .rng_seed(6);
        assert_eq!(
            (config.zk.as_str(), config.base_path.as_str()),
            ("127.0.0.1:2181", "/services/echo")
        );
        assert!(matches!(config.strategy, Strategy::First));
        assert_eq!(config.session_timeout, Duration::from_secs(3));
        assert_eq!(config.connect_timeout, Duration::from_secs(4));
        assert_eq!(config.ejection.max_ejection_percent, 10);
        assert_eq!(config.buffer_limit, 5);
        assert!(Arc::ptr_eq(&config.retry_budget, &budget));
        assert_eq!(config.zk_auth, Some(credential));
        assert_eq!(
            config.snapshot_path,
            Some(PathBuf::from("/var/lib/echo/providers"))
        );
        assert_eq!(config.rng_seed, Some(6));
        assert!(config.tls.is_none());
        assert_eq!(config.format, NodeFormat::Url);
    }
}
