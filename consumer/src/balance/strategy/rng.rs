//! The random numbers of the built-in picking rules: the thread's generator by default (no state
//! shared between the threads that pick), or, with a seed, one sequence that is the same from
//! run to run (tower's `Balance::from_rng`): SplitMix64 over one shared counter, so picks made
//! one after another draw the same numbers every time. Concurrent picks draw from the same
//! sequence in whatever order they come.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

/// SplitMix64's increment (2^64 / φ).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where a picking rule's random numbers come from.
#[derive(Debug, Default)]
pub(crate) enum PickRng {
    /// The calling thread's generator (`rand::rng()`).
    #[default]
    Thread,
    /// A seeded SplitMix64 sequence: the counter it advances.
    Seeded(AtomicU64),
}

impl PickRng {
    /// The sequence of `seed`.
    pub(crate) fn seeded(seed: u64) -> PickRng {
        PickRng::Seeded(AtomicU64::new(seed))
    }

    /// A number in `0..n` (`n` > 0; 0 for `n` = 0).
    pub(crate) fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        match self {
            PickRng::Thread => rand::rng().random_range(0..n),
            PickRng::Seeded(state) => {
                let mut z = state
                    .fetch_add(GAMMA, Ordering::Relaxed)
                    .wrapping_add(GAMMA);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                // The high bits of z × n: in 0..n, unbiased to within n / 2^64.
                ((u128::from(z) * u128::from(n)) >> 64) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_sequence_and_stays_in_range() {
        let draws = |rng: &PickRng| (0..64).map(|_| rng.below(10)).collect::<Vec<_>>();
        let a = draws(&PickRng::seeded(7));
        assert_eq!(a, draws(&PickRng::seeded(7)));
        assert_ne!(a, draws(&PickRng::seeded(8)));
        assert!(a.iter().all(|&x| x < 10));
        // Every value turns up: the draws are spread, not stuck.
        assert!((0..10).all(|v| a.contains(&v)), "{a:?}");
        assert!((0..100).all(|_| PickRng::Thread.below(3) < 3));
        assert_eq!(PickRng::seeded(1).below(0), 0);
    }
}
