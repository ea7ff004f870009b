//! [`Previous`]: finding, during an update, the endpoint a node already had.

use std::collections::HashMap;
use std::sync::Arc;

use zoorpc_registry::ProviderNode;

use crate::balance::endpoint::Endpoint;

/// The endpoints before an update, to find the one of a node that is still there: walked along
/// the new list when both are in node order (discovery's snapshots are), else looked up by node.
pub(super) enum Previous<'a> {
    /// Both lists in node order (names unique): one walk, no hashing.
    Sorted {
        endpoints: &'a [Arc<Endpoint>],
        next: usize,
    },
    /// By node (name and creation).
    Indexed(HashMap<(&'a str, i64), &'a Arc<Endpoint>>),
}

impl<'a> Previous<'a> {
    pub(super) fn new(endpoints: &'a [Arc<Endpoint>], providers: &[ProviderNode]) -> Previous<'a> {
        if endpoints.is_sorted_by(|a, b| a.node < b.node)
            && providers.is_sorted_by(|a, b| a.name < b.name)
        {
            return Previous::Sorted { endpoints, next: 0 };
        }
        Previous::Indexed(
            endpoints
                .iter()
                .map(|e| ((e.node.as_str(), e.created), e))
                .collect(),
        )
    }

    /// The previous endpoint of `p`'s node (same name and creation), if any. With `Sorted`,
    /// called in the new list's order.
    pub(super) fn find(&mut self, p: &ProviderNode) -> Option<&'a Arc<Endpoint>> {
        match self {
            Previous::Sorted { endpoints, next } => {
                while let Some(e) = endpoints.get(*next) {
                    match e.node.as_str().cmp(p.name.as_str()) {
                        std::cmp::Ordering::Less => *next += 1,
                        std::cmp::Ordering::Equal => {
                            *next += 1;
                            return (e.created == p.created).then_some(e);
                        }
                        std::cmp::Ordering::Greater => return None,
                    }
                }
                None
            }
            Previous::Indexed(by_node) => by_node.get(&(p.name.as_str(), p.created)).copied(),
        }
    }
}
