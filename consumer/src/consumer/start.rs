//! How a [`Consumer`] starts: connected (discovery's first listing loaded), or, with ZooKeeper
//! out of reach and a snapshot configured, from the snapshot with the connection made later.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::warn;
use zoorpc_registry::{Discovery, Providers, Session};

use super::{CallPolicy, Consumer, ConsumerConfig};
use crate::balance::route::{Follower, ListRoute};
use crate::balance::{BalancedChannel, EndpointSet};
use crate::error::{Error, Result, open_session};
use crate::live_list::{self, Live, Settings, Start};
use crate::snapshot;

impl Consumer {
    /// Connects to ZooKeeper and watches `base_path`.
    pub async fn connect(zk: &str, base_path: &str) -> Result<Consumer> {
        Consumer::connect_with(ConsumerConfig::new(zk, base_path)).await
    }

    /// Connects with `config`. With a snapshot path, ZooKeeper out of reach within the connect
    /// timeout and a readable snapshot of the base path: serves the snapshot and connects in the
    /// background; otherwise the connect error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_consumer::Error> {
    /// use zoorpc_consumer::{Consumer, ConsumerConfig, Strategy};
    /// let mut config = ConsumerConfig::new("127.0.0.1:2181", "/services/echo").strategy(Strategy::RoundRobin);
    /// config.snapshot_path = Some("/var/lib/echo-client/providers".into());
    /// let consumer = Consumer::connect_with(config).await?;
    /// if let Some(age) = consumer.snapshot_age() {
    ///     eprintln!("ZooKeeper is out of reach; serving the list saved {age:?} ago");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(config: ConsumerConfig) -> Result<Consumer> {
        let opened = open_session(
            &config.zk,
            config.session_timeout,
            config.connect_timeout,
            config.zk_auth.clone(),
        )
        .await;
        let unreachable = match opened {
            Ok(session) => return Consumer::with_session_and(session, config).await,
            Err(Error::Registry(e @ zoorpc_registry::Error::Unreachable { .. })) => e,
            Err(e) => return Err(e),
        };
        let Some(path) = config.snapshot_path.as_deref() else {
            return Err(unreachable.into());
        };
        let snapshot = match snapshot::read(path, &config.base_path) {
            Ok(snapshot) => snapshot,
            Err(reason) => {
                warn!(%reason, "ZooKeeper is out of reach and the snapshot cannot be used");
                return Err(unreachable.into());
            }
        };
        warn!(
            error = %unreachable,
            file = %path.display(),
            age = ?snapshot.age(),
            count = snapshot.providers.len(),
            "ZooKeeper is out of reach; serving the last known list from the snapshot until it connects"
        );
        let list: Providers = Arc::new(snapshot.providers);
        Ok(Consumer::assemble(
            config,
            Start::Later,
            list,
            Arc::new(OnceLock::new()),
            Some(snapshot.written_at),
        ))
    }

    /// Watches `base_path` on an existing session, with the default settings.
    pub async fn with_session(session: Session, base_path: &str) -> Result<Consumer> {
        let config = ConsumerConfig::new(String::new(), base_path);
        Consumer::with_session_and(session, config).await
    }

    /// Watches `config.base_path` (read as `config.format` says) on an existing session (the config's ZooKeeper settings are
    /// not used).
    pub async fn with_session_and(session: Session, config: ConsumerConfig) -> Result<Consumer> {
        let discovery = Discovery::watch_format(&session, &config.base_path, config.format).await?;
        let mut snapshots = discovery.subscribe();
        let first = snapshots.borrow_and_update().clone();
        let live = Arc::new(OnceLock::new());
        let _ = live.set(Live { session, discovery });
        Ok(Consumer::assemble(
            config,
            Start::Connected(snapshots),
            first,
            live,
            None,
        ))
    }

    /// The endpoint set loaded with `first`, the channel, and the task that follows the list.
    fn assemble(
        config: ConsumerConfig,
        start: Start,
        first: Providers,
        live: Arc<OnceLock<Live>>,
        snapshot_written: Option<SystemTime>,
    ) -> Consumer {
        let base_path = config.base_path.clone();
        let endpoints = Arc::new(
            EndpointSet::seeded(&config.strategy, config.ejection, config.rng_seed)
                .with_tls(config.tls.clone()),
        );
        endpoints.update(&first);
        crate::balance::live_endpoints(&base_path, endpoints.len());
        let (providers_tx, providers) = watch::channel(first);
        let settings = Settings {
            zk: config.zk,
            session_timeout: config.session_timeout,
            connect_timeout: config.connect_timeout,
            credential: config.zk_auth,
            base_path: base_path.clone(),
            format: config.format,
            snapshot_path: config.snapshot_path,
        };
        // The task that copies discovery's snapshots into `endpoints` (and the snapshot file),
        // connecting first when started from a snapshot. The channels' route holds it, the
        // consumer's own channel too: it runs until the consumer and every channel made from it
        // are dropped.
        let follower = Arc::new(Follower(live_list::spawn(
            start,
            settings,
            endpoints.clone(),
            providers_tx,
            live.clone(),
        )));
        let route = Arc::new(ListRoute {
            endpoints: endpoints.clone(),
            base_path: base_path.clone(),
            _follower: follower,
        });
        let channel = BalancedChannel::new(
            route,
            CallPolicy::DEFAULT,
            config.retry_budget,
            config.buffer_limit,
        );
        Consumer {
            base_path,
            live,
            providers,
            snapshot_written,
            endpoints,
            channel,
        }
    }
}
