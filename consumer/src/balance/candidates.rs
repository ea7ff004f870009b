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
/// the prefix sums of their weights, computed when the list changes. The common cases store
/// nothing per endpoint: a class that is the whole list keeps no positions, a class of equal
/// weights keeps no sums.
#[derive(Debug, Default)]
pub(crate) struct Class {
    /// Positions in the list, in list order; empty when `whole`.
    positions: Vec<usize>,
    /// Whether the class is every endpoint of the list (its positions are `0..len`).
    whole: bool,
    /// How many endpoints the class holds.
    len: usize,
    /// `cumulative[k]` = the weights of the first `k + 1` members added up; empty when uniform.
    cumulative: Vec<u64>,
    /// The members' weights added up.
    total: u64,
    /// Whether every weight is the same (all 0 included): draws are then uniform.
    uniform: bool,
}

impl Class {
    /// The class of the endpoints for which `member` holds.
    pub(crate) fn of(endpoints: &[Arc<Endpoint>], member: impl Fn(&Endpoint) -> bool) -> Class {
        let members = || endpoints.iter().enumerate().filter(|(_, e)| member(e));
        let (mut len, mut total, mut first_weight, mut uniform) = (0, 0u64, None, true);
        for (_, e) in members() {
            len += 1;
            total += u64::from(e.weight);
            uniform &= *first_weight.get_or_insert(e.weight) == e.weight;
        }
        let whole = len == endpoints.len();
        let positions = if whole {
            Vec::new()
        } else {
            members().map(|(i, _)| i).collect()
        };
        let cumulative = if uniform {
            Vec::new()
        } else {
            let mut sum = 0u64;
            members()
                .map(|(_, e)| {
                    sum += u64::from(e.weight);
                    sum
                })
                .collect()
        };
        Class {
            positions,
            whole,
            len,
            cumulative,
            total,
            uniform,
        }
    }

    /// The list index of the `n`-th member, in list order.
    fn nth(&self, n: usize) -> Option<usize> {
        if n >= self.len {
            None
        } else if self.whole {
            Some(n)
        } else {
            self.positions.get(n).copied()
        }
    }

    /// The position among the members of the one holding weight ticket `ticket`.
    fn ticket_holder(&self, ticket: u64) -> usize {
        if self.uniform {
            // Every member holds `total / len` tickets (none when every weight is 0).
            let each = self.total / self.len.max(1) as u64;
            ticket
                .checked_div(each)
                .map_or(self.len, |k| usize::try_from(k).unwrap_or(usize::MAX))
        } else {
            self.cumulative.partition_point(|&c| c <= ticket)
        }
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
        self.class.len
    }

    /// Whether the class holds no endpoint.
    pub fn is_empty(&self) -> bool {
        self.class.len == 0
    }

    /// The class's weights added up.
    pub fn total_weight(&self) -> u64 {
        self.class.total
    }

    /// Whether all weights in the class are equal (draws by [`Candidates::nth`] are then fair).
    pub fn is_uniform(&self) -> bool {
        self.class.uniform
    }

    /// The list index of the class's `n`-th endpoint (`n < len()`), in list order.
    pub fn nth(&self, n: usize) -> Option<usize> {
        self.class.nth(n)
    }

    /// The list index of the endpoint holding weight ticket `ticket` (`0..total_weight()`).
    pub fn by_ticket(&self, ticket: u64) -> Option<usize> {
        self.class.nth(self.class.ticket_holder(ticket))
    }
}
