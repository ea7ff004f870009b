//! What the page shows, kept up to date by one task: the services and elections under the root,
//! re-read once per change heard by the root's [`TreeWatch`] (or of the session's link), and
//! published as one JSON document to every viewer through a `tokio::sync::watch` (a slow viewer
//! skips to the newest state, never holds the others back).
//!
//! The timeline of masters is this console's memory: one entry per election each time what it
//! shows of it (its master, epoch, bad data, a designation or a handover under way) differs
//! from the last one seen (the first entry is what it saw at start).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;
use zoorpc_registry::{Error, Session, TreeWatch, inspect};

use super::super::{ls, master, now_ms};
use super::homes::Homes;

/// The most timeline entries kept (the oldest go first).
const MAX_TIMELINE: usize = 1000;
/// The least time between two starts of a read of the tree: a root whose nodes change all the
/// time (a master job's claims, say) costs at most ten walks a second, whatever the churn.
const MIN_READ_GAP: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts following `root` and returns the receiver of its states (JSON text), the first one
/// already read; an error when the root cannot be read. `traffic`: the scraper's rates, if the
/// console scrapes (every new value is published with the last state read).
pub(super) async fn follow(
    session: Session,
    root: String,
    can_act: bool,
    traffic: Option<watch::Receiver<Value>>,
) -> Result<watch::Receiver<Arc<str>>, Error> {
    let tree = TreeWatch::start(&session, &root).await?;
    let mut view = View::new(root, can_act);
    let (listing, masters) = read(&session, &view.root).await?;
    view.take(listing, masters);
    let (tx, rx) = watch::channel(view.render());
    tokio::spawn(keep_up(session, tree, view, tx, traffic));
    Ok(rx)
}

/// What woke [`keep_up`].
enum Wake {
    /// The tree or the session's link changed: read again.
    Read,
    /// New traffic rates: publish them with the last state read.
    Traffic,
    /// Nobody can receive any more, or the session is gone.
    Stop,
}

/// Re-reads and publishes after every change of the tree or of the session's link, and
/// publishes every new traffic reading, until no one can receive any more.
async fn keep_up(
    session: Session,
    tree: TreeWatch,
    mut view: View,
    tx: watch::Sender<Arc<str>>,
    mut traffic: Option<watch::Receiver<Value>>,
) {
    let mut changes = tree.subscribe();
    let mut statuses = session.subscribe();
    let mut last_read = tokio::time::Instant::now();
    loop {
        let traffic_changed = async {
            if let Some(t) = traffic.as_mut()
                && t.changed().await.is_ok()
            {
                return Wake::Traffic;
            }
            // No scraping (or it ended): nothing to wait for here.
            std::future::pending().await
        };
        let wake = tokio::select! {
            changed = changes.changed() => if changed.is_ok() { Wake::Read } else { Wake::Stop },
            changed = statuses.changed() => if changed.is_ok() { Wake::Read } else { Wake::Stop },
            wake = traffic_changed => wake,
            () = tx.closed() => Wake::Stop,
        };
        match wake {
            Wake::Stop => return,
            Wake::Traffic => {
                if let Some(t) = traffic.as_mut() {
                    view.traffic = t.borrow_and_update().clone();
                    view.homes.forget(now_ms(), &view.traffic);
                }
            }
            Wake::Read => {
                tokio::time::sleep_until(last_read + MIN_READ_GAP).await;
                last_read = tokio::time::Instant::now();
                // Whatever else changes while this read runs moves the count again: read again
                // then.
                changes.mark_unchanged();
                let connected = statuses.borrow_and_update().is_connected();
                view.refresh(&session, connected).await;
            }
        }
        tx.send_replace(view.render());
    }
}

/// The services under `root` and the elections' masters (as `zoorpc master --json` shows them).
async fn read(
    session: &Session,
    root: &str,
) -> Result<(inspect::ServiceListing, Vec<Value>), Error> {
    let listing = inspect::services(session, root).await?;
    let now = now_ms();
    let mut masters = Vec::new();
    for path in &listing.elections {
        let shown = match inspect::master(session, path).await {
            Ok(Some(m)) => master::master_json(path, m, now),
            Ok(None) => master::no_master_json(path, inspect::designee(session, path).await?),
            // Something else than an election took the place (an operator's node): not shown.
            Err(Error::NotAnElection { .. }) => continue,
            Err(e) => return Err(e),
        };
        masters.push(shown);
    }
    Ok((listing, masters))
}

/// The state as last read, with the timeline and the link's health.
struct View {
    root: String,
    can_act: bool,
    services: Value,
    masters: Vec<Value>,
    /// Masters seen since the start, oldest first.
    timeline: Vec<Value>,
    /// The last timeline entry per election (without its time), to tell a change.
    last_master: BTreeMap<String, Value>,
    /// When the shown state was read (Unix ms).
    read_ms: i64,
    /// Why the shown state may be stale (ZooKeeper out of reach, a failed read).
    problem: Option<String>,
    /// The scraper's last rates per endpoint (`null` without `--scrape`).
    traffic: Value,
    /// The base path each endpoint is charted under, so a provider gone from the registry
    /// still shows in its service's chart as its traffic moves away.
    homes: Homes,
}

impl View {
    fn new(root: String, can_act: bool) -> View {
        View {
            root,
            can_act,
            services: Value::Null,
            masters: Vec::new(),
            timeline: Vec::new(),
            last_master: BTreeMap::new(),
            read_ms: 0,
            problem: None,
            traffic: Value::Null,
            homes: Homes::default(),
        }
    }

    /// Reads the tree again (`connected`: whether the session's link is up), or says why the
    /// shown state is the last one read.
    async fn refresh(&mut self, session: &Session, connected: bool) {
        if !connected {
            self.problem = Some("ZooKeeper is out of reach: showing the last state read".into());
            return;
        }
        match read(session, &self.root).await {
            Ok((listing, masters)) => self.take(listing, masters),
            Err(e) => {
                self.problem = Some(format!(
                    "cannot read ZooKeeper ({e}): showing the last state read"
                ))
            }
        }
    }

    /// Takes in a fresh read: the shown state, and the timeline's new entries.
    fn take(&mut self, listing: inspect::ServiceListing, masters: Vec<Value>) {
        let now = now_ms();
        let live = listing.services.iter().flat_map(|service| {
            let urls = service.providers.iter().filter_map(|p| p.url.as_ref().ok());
            urls.map(|url| (url.endpoint(), service.base_path.clone()))
        });
        self.homes.update(live, now, &self.traffic);
        self.services = ls::to_json(&self.root, &listing, now);
        for m in &masters {
            let path = m["path"].as_str().unwrap_or_default().to_owned();
            // What the timeline shows of an election: a change of any of it is an entry.
            let seen = json!({
                "path": path,
                "master": m["master"],
                "epoch": m["epoch"],
                "error": m["error"],
                "designee": m["designee"],
                "designated": m["designated"],
            });
            if self.last_master.get(&path) != Some(&seen) {
                let mut entry = seen.clone();
                entry["at_ms"] = json!(now);
                self.timeline.push(entry);
                self.last_master.insert(path, seen);
            }
        }
        if self.timeline.len() > MAX_TIMELINE {
            let extra = self.timeline.len() - MAX_TIMELINE;
            self.timeline.drain(..extra);
        }
        self.masters = masters;
        self.read_ms = now;
        self.problem = None;
    }

    /// The JSON document of `/api/state` (an object, never empty; the server stamps its clock
    /// into it as it sends it).
    fn render(&self) -> Arc<str> {
        let doc = json!({
            "root": self.root,
            "read_ms": self.read_ms,
            "zookeeper": { "ok": self.problem.is_none(), "problem": self.problem },
            "can_act": self.can_act,
            "default_weight": zoorpc_consumer::balance::DEFAULT_WEIGHT,
            "services": self.services["services"],
            "unreadable": self.services["unreadable"],
            "truncated": self.services["truncated"],
            "masters": self.masters,
            "timeline": self.timeline,
            "traffic": self.traffic,
            "homes": self.homes.to_json(&self.traffic),
        });
        doc.to_string().into()
    }
}
