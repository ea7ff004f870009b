//! [`Previous`]: finding, during an update, the endpoint a node already had.

use std::collections::HashMap;
use std::sync::Arc;

use zoorpc_registry::ProviderNode;

use crate::balance::endpoint::Endpoint;

/// The endpoints before an update, to find the one of a node that is still there: walked along
/// the new list while both are in node order (discovery's snapshots are), else looked up by
/// node. Order is not checked up front (comparing neighbours' names cost more than the walk):
/// the new list's order is followed as it is asked for, a new list out of order switches the
/// walk to the lookup, and [`Previous::in_order`] tells the endpoint set whether its new list
/// can be walked next time.
pub(super) struct Previous<'a> {
    lookup: Lookup<'a>,
    /// The last name asked for.
    last: Option<&'a str>,
    /// Whether every name asked for was greater than the one before.
    ordered: bool,
}

enum Lookup<'a> {
    /// Both lists in node order (names unique): one walk, no hashing.
    Walk {
        endpoints: &'a [Arc<Endpoint>],
        next: usize,
    },
    /// By node (name and creation).
    Indexed(HashMap<(&'a str, i64), &'a Arc<Endpoint>>),
}

fn index(endpoints: &[Arc<Endpoint>]) -> HashMap<(&str, i64), &Arc<Endpoint>> {
    endpoints
        .iter()
        .map(|e| ((&*e.node, e.created), e))
        .collect()
}

impl<'a> Previous<'a> {
    /// `sorted`: whether `endpoints` are in node order (names unique).
    pub(super) fn new(endpoints: &'a [Arc<Endpoint>], sorted: bool) -> Previous<'a> {
        let lookup = if sorted {
            Lookup::Walk { endpoints, next: 0 }
        } else {
            Lookup::Indexed(index(endpoints))
        };
        Previous {
            lookup,
            last: None,
            ordered: true,
        }
    }

    /// Whether every node asked for so far came in node order (the new list is sorted).
    pub(super) fn in_order(&self) -> bool {
        self.ordered
    }

    /// The previous endpoint of `p`'s node (same name and creation), if any; call it for the
    /// new list's nodes in the new list's order.
    pub(super) fn find(&mut self, p: &'a ProviderNode) -> Option<&'a Arc<Endpoint>> {
        if self.last.is_some_and(|last| last >= &*p.name) {
            self.ordered = false;
            if let Lookup::Walk { endpoints, .. } = self.lookup {
                // Out of order: look the rest up instead.
                self.lookup = Lookup::Indexed(index(endpoints));
            }
        }
        self.last = Some(&*p.name);
        match &mut self.lookup {
            Lookup::Walk { endpoints, next } => {
                while let Some(e) = endpoints.get(*next) {
                    // The same node shares its name: no need to read the bytes.
                    let order = if Arc::ptr_eq(&e.node, &p.name) {
                        std::cmp::Ordering::Equal
                    } else {
                        e.node.cmp(&p.name)
                    };
                    match order {
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
            Lookup::Indexed(by_node) => by_node.get(&(&*p.name, p.created)).copied(),
        }
    }
}
