//! [`Candidates`]: what a strategy draws from, prepared once per list update so that a pick
//! costs O(1) draws (O(log n) with unequal weights) instead of walks over the whole list.
//!
//! The [`EndpointSet`](super::EndpointSet) keeps, beside its list, the positions of the
//! weighted endpoints and of the weight-0 backups (`Class`), each with the prefix sums of its
//! weights. Ejection and the caller's exclusions change between updates, so they are not in the
//! tables: a strategy draws from the whole class and checks the drawn endpoint
//! ([`Candidates::is_usable`]), drawing again when it is not. Rejected draws leave the
//! distribution among the usable endpoints exactly what a walk over them would give, and since at
//! most half of the endpoints are ejected, two draws are expected; after [`DRAWS`] misses a
//! strategy falls back to the walk ([`Pick::pick`](super::Pick::pick)), which is exact.

use std::sync::Arc;

use super::endpoint::Endpoint;

/// Draws a strategy makes before it falls back to walking the list.
pub const DRAWS: usize = 8;

/// One class of endpoints (weighted, or the weight-0 backups): their positions in the list and
/// the prefix sums of their weights, computed when the list changes.
#[derive(Debug, Default)]
pub(crate) struct Class {
    /// Positions in the list, in list order.
    positions: Vec<usize>,
    /// `cumulative[k]` = the weights of `positions[..=k]` added up.
    cumulative: Vec<u64>,
    /// Whether every weight is the same (all 0 included): draws are then uniform.
    uniform: bool,
}

impl Class {
    /// The class of the endpoints for which `member` holds.
    pub(crate) fn of(endpoints: &[Arc<Endpoint>], member: impl Fn(&Endpoint) -> bool) -> Class {
        let mut class = Class {
            uniform: true,
            ..Class::default()
        };
        let mut total = 0u64;
        for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| member(e)) {
            if let Some(&first) = class.positions.first() {
                class.uniform &= endpoints[first].weight == e.weight;
            }
            total += u64::from(e.weight);
            class.positions.push(i);
            class.cumulative.push(total);
        }
        class.uniform |= total == 0;
        class
    }
}

/// The endpoints a strategy may pick from now: one class of the list (weighted, or backups),
/// and the test the drawn endpoint must pass (not ejected, not excluded by the caller, in the
/// class).
pub struct Candidates<'a> {
    endpoints: &'a [Arc<Endpoint>],
    class: &'a Class,
    usable: &'a dyn Fn(&Endpoint) -> bool,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(
        endpoints: &'a [Arc<Endpoint>],
        class: &'a Class,
        usable: &'a dyn Fn(&Endpoint) -> bool,
    ) -> Candidates<'a> {
        Candidates {
            endpoints,
            class,
            usable,
        }
    }

    /// The whole list (indices returned by a strategy are into it).
    pub fn endpoints(&self) -> &'a [Arc<Endpoint>] {
        self.endpoints
    }

    /// The test an endpoint must pass to be picked now.
    pub fn usable(&self) -> &'a dyn Fn(&Endpoint) -> bool {
        self.usable
    }

    /// Whether the endpoint at list index `i` may be picked now.
    pub fn is_usable(&self, i: usize) -> bool {
        self.endpoints.get(i).is_some_and(|e| (self.usable)(e))
    }

    /// How many endpoints the class holds, usable now or not.
    pub fn len(&self) -> usize {
        self.class.positions.len()
    }

    /// Whether the class holds no endpoint.
    pub fn is_empty(&self) -> bool {
        self.class.positions.is_empty()
    }

    /// The class's weights added up.
    pub fn total_weight(&self) -> u64 {
        self.class.cumulative.last().copied().unwrap_or(0)
    }

    /// Whether all weights in the class are equal (draws by [`Candidates::nth`] are then fair).
    pub fn is_uniform(&self) -> bool {
        self.class.uniform
    }

    /// The list index of the class's `n`-th endpoint (`n < len()`), in list order.
    pub fn nth(&self, n: usize) -> Option<usize> {
        self.class.positions.get(n).copied()
    }

    /// The list index of the endpoint holding weight ticket `ticket` (`0..total_weight()`).
    pub fn by_ticket(&self, ticket: u64) -> Option<usize> {
        let k = self.class.cumulative.partition_point(|&c| c <= ticket);
        self.nth(k)
    }
}
