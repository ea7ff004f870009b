//! [`LeastLoaded`]: the power of two choices over the endpoints' load, weighted.

use std::sync::Arc;

use super::super::candidates::{Candidates, DRAWS};
use super::super::endpoint::Endpoint;
use super::super::load::Load;
use super::{Pick, PickRng, by_ticket, census, first_usable_draw, nth_usable};

/// Power of two choices over the endpoints' [`Load::cost`](super::super::Load::cost),
/// weighted: the first candidate is drawn in proportion to `?weight=N`, the second too (another
/// endpoint); the second wins only if it is clearly cheaper (by more than 1.5 times), so
/// equally loaded endpoints share the calls by weight, and a slow, stalled or overloaded one
/// (requests in flight counted per 100 of weight) is avoided.
///
/// The draws come from the thread's generator by default, or from a sequence that repeats from
/// run to run with [`LeastLoaded::seeded`].
#[derive(Debug, Default)]
pub struct LeastLoaded {
    rng: PickRng,
}

impl LeastLoaded {
    /// Least-loaded drawing its two candidates from `seed`'s sequence.
    pub fn seeded(seed: u64) -> LeastLoaded {
        LeastLoaded {
            rng: PickRng::seeded(seed),
        }
    }

    /// The second candidate, another than `a`, drawn by `draw`; the first other usable one in
    /// list order if the draws keep finding `a` (one endpoint holding nearly all the weight).
    fn other(
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
        a: usize,
        mut draw: impl FnMut() -> Option<usize>,
    ) -> Option<usize> {
        (0..DRAWS)
            .filter_map(|_| draw())
            .find(|&b| b != a && endpoints.get(b).is_some_and(|e| usable(e)))
            .or_else(|| {
                endpoints
                    .iter()
                    .enumerate()
                    .find(|(i, e)| *i != a && usable(e))
                    .map(|(i, _)| i)
            })
    }
}

impl Pick for LeastLoaded {
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let (count, total, uniform) = census(endpoints, usable);
        if count <= 1 {
            return nth_usable(endpoints, usable, 0);
        }
        let draw = || {
            if uniform {
                nth_usable(endpoints, usable, self.rng.below(count as u64) as usize)
            } else {
                by_ticket(endpoints, usable, self.rng.below(total))
            }
        };
        let a = draw()?;
        let b = Self::other(endpoints, usable, a, draw)?;
        Some(cheaper(endpoints, a, b))
    }

    fn pick_candidate(&self, candidates: &Candidates<'_>) -> Option<usize> {
        let len = candidates.len();
        if len < 2 {
            return first_usable_draw(candidates, || candidates.nth(0));
        }
        let (total, uniform) = (candidates.total_weight(), candidates.is_uniform());
        let mut draw = || {
            if uniform {
                candidates.nth(self.rng.below(len as u64) as usize)
            } else {
                candidates.by_ticket(self.rng.below(total))
            }
        };
        let endpoints = candidates.endpoints();
        let drawn = first_usable_draw(candidates, &mut draw).and_then(|a| {
            Self::other(endpoints, candidates.usable(), a, &mut draw)
                .map(|b| cheaper(endpoints, a, b))
        });
        // None usable found in the draws (most out): the walk, which knows.
        drawn.or_else(|| self.pick(endpoints, candidates.usable()))
    }
}

/// `b` if it is clearly cheaper than `a`, else `a` (drawn first, by weight).
fn cheaper(endpoints: &[Arc<Endpoint>], a: usize, b: usize) -> usize {
    let (ea, eb) = (&endpoints[a], &endpoints[b]);
    if Load::clearly_cheaper(ea.load(), ea.weight(), eb.load(), eb.weight()) {
        b
    } else {
        a
    }
}
