//! A provider's weight changed at run time, by an operator, in ZooKeeper.
//!
//! The rule: a write into a provider's node that changes only its `weight` metadata (the same
//! scheme, host, port and other metadata, in the same order; a weight that is a whole number
//! from 0 to 2^32-1, or none) is kept by the provider: its [`Registration`](crate::Registration)
//! takes that URL as its own, so it is what it writes back after any other change of the node
//! and what it registers again after a session expiry. Any other change is written back, as
//! before. (Without the rule the provider wrote its URL back at once, and a weight could only be
//! changed by restarting the provider with another `--weight`.) [`set_weight`] is that write.
//!
//! In the Curator layout ([`crate::curator`]) the weight is the `weight` of the instance's
//! Spring Cloud Zookeeper metadata: a write that changes only that is kept the same way; an
//! instance without Spring metadata (a `null` payload) has no weight to set.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{Session, weight};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let url = weight::set_weight(&session, "/registry/provider0000000003", 10).await?;
//! assert_eq!(url.metadata("weight"), Some("10"));
//! # Ok(()) }
//! ```

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::session::Session;

/// The metadata key of a provider's weight.
pub const WEIGHT: &str = "weight";

/// Whether `found` is `ours` with only its weight changed (see the module's rule).
///
/// ```
/// use zoorpc_registry::{ProviderUrl, weight::reweighted};
/// let ours: ProviderUrl = "http://10.0.0.7:50051?weight=100&zone=a".parse()?;
/// assert!(reweighted(&ours, &"http://10.0.0.7:50051?weight=5&zone=a".parse()?));
/// assert!(!reweighted(&ours, &"http://10.0.0.8:50051?weight=5&zone=a".parse()?));
/// assert!(!reweighted(&ours, &"http://10.0.0.7:50051?weight=5&zone=b".parse()?));
/// assert!(!reweighted(&ours, &"http://10.0.0.7:50051?weight=-1&zone=a".parse()?));
/// # Ok::<(), zoorpc_registry::Error>(())
/// ```
pub fn reweighted(ours: &ProviderUrl, found: &ProviderUrl) -> bool {
    let others = |url: &ProviderUrl| -> Vec<(String, String)> {
        url.metadata_pairs()
            .iter()
            .filter(|(k, _)| k != WEIGHT)
            .cloned()
            .collect()
    };
    ours != found
        && ours.endpoint() == found.endpoint()
        && others(ours) == others(found)
        && found
            .metadata(WEIGHT)
            .is_none_or(|w| w.parse::<u32>().is_ok())
}

/// [`reweighted`] of a node's data: two URLs, or two instances in the Curator layout (the
/// weight in their Spring metadata, [`crate::curator`]); `false` for anything else.
pub(crate) fn reweighted_data(ours: &[u8], found: &[u8]) -> bool {
    if ours.first() == Some(&b'{') {
        return crate::curator::reweight::reweighted(ours, found);
    }
    match (
        ProviderUrl::from_bytes(ours),
        ProviderUrl::from_bytes(found),
    ) {
        (Ok(ours), Ok(found)) => reweighted(&ours, &found),
        _ => false,
    }
}

/// The URL a registration of `url` stands for once it kept `data` (a write that changed only
/// the weight, [`reweighted_data`]): `data` itself as a URL, or in the Curator layout `url` with
/// the weight of the instance's Spring metadata (none there: `url` as it was).
pub(crate) fn kept_url(url: &ProviderUrl, data: &[u8]) -> ProviderUrl {
    if data.first() != Some(&b'{') {
        return ProviderUrl::from_bytes(data).unwrap_or_else(|_| url.clone());
    }
    let weight = crate::curator::CuratorInstance::parse(data)
        .ok()
        .and_then(|instance| {
            let (_, w) = instance.metadata.iter().find(|(k, _)| k == WEIGHT)?;
            w.parse::<u32>().ok()
        });
    match weight {
        Some(weight) => with_weight(url, weight).unwrap_or_else(|_| url.clone()),
        None => url.clone(),
    }
}

/// `url` with its weight set to `weight` (in place of the old one, or added last).
///
/// ```
/// use zoorpc_registry::{ProviderUrl, weight::with_weight};
/// let url: ProviderUrl = "http://10.0.0.7:50051?weight=100&zone=a".parse()?;
/// assert_eq!(with_weight(&url, 5)?.as_str(), "http://10.0.0.7:50051?weight=5&zone=a");
/// let bare: ProviderUrl = "http://10.0.0.7:50051".parse()?;
/// assert_eq!(with_weight(&bare, 5)?.as_str(), "http://10.0.0.7:50051?weight=5");
/// # Ok::<(), zoorpc_registry::Error>(())
/// ```
pub fn with_weight(url: &ProviderUrl, weight: u32) -> Result<ProviderUrl> {
    let mut pairs: Vec<(String, String)> = url.metadata_pairs().to_vec();
    match pairs.iter_mut().find(|(k, _)| k == WEIGHT) {
        Some(pair) => pair.1 = weight.to_string(),
        None => pairs.push((WEIGHT.to_owned(), weight.to_string())),
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}?{}", url.endpoint(), query.join("&")).parse()
}

/// Sets the weight of the provider whose node is `node` (its URL rewritten with
/// [`with_weight`], or, for an instance in the Curator layout, the `weight` of its Spring Cloud
/// Zookeeper metadata; guarded by the node's version so a concurrent write is never lost); a
/// zoorpc provider keeps it (see the module's rule) and returns the URL consumers now call. An
/// error if the node is gone, holds neither a URL nor Curator's JSON, or is a Curator instance
/// without Spring metadata (a `null` payload has no place for a weight).
pub async fn set_weight(session: &Session, node: &str, weight: u32) -> Result<ProviderUrl> {
    let node = validate_path(node)?;
    let client = session.connected_within_timeout().await?.client;
    loop {
        let (data, stat) = client
            .get_data(node)
            .await
            .map_err(|e| Error::zk("read", node, e))?;
        let (written, url) = if data.first() == Some(&b'{') {
            let written = crate::curator::reweight::with_weight(&data, weight)?;
            let url = crate::curator::CuratorInstance::url_of(&written)?;
            (written, url)
        } else {
            let url = with_weight(&ProviderUrl::from_bytes(&data)?, weight)?;
            (url.as_str().as_bytes().to_vec(), url)
        };
        match client.set_data(node, &written, Some(stat.version)).await {
            Ok(_) => return Ok(url),
            // Written meanwhile (the provider restoring its URL, say): read it again.
            Err(zk::Error::BadVersion) => continue,
            Err(e) => return Err(Error::zk("set", node, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curator::{CuratorInstance, CuratorPayload, CuratorService};

    #[test]
    fn the_kept_url_carries_the_weight_written_in_either_layout() {
        let ours: ProviderUrl = "http://10.0.0.7:50051?weight=100&zone=a".parse().unwrap();
        let seven = with_weight(&ours, 7).unwrap();
        assert_eq!(kept_url(&ours, seven.as_str().as_bytes()), seven);
        let service = CuratorService::new("greeter").payload(CuratorPayload::SpringCloud);
        let spring =
            CuratorInstance::for_url(&service, &seven).to_json(CuratorPayload::SpringCloud);
        assert_eq!(kept_url(&ours, &spring).metadata(WEIGHT), Some("7"));
        let bare = CuratorInstance::for_url(&service, &seven).to_json(CuratorPayload::None);
        assert_eq!(
            kept_url(&ours, &bare),
            ours,
            "no Spring metadata: as registered"
        );
    }
}
