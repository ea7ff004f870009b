//! Whether a failed attempt is tried again, and where the retries come from: one decision shared
//! by every call through a balanced channel (the consumer's and the master client's).
//!
//! - Never sent ([`Failure::NotSent`]): always tried again elsewhere, outside any budget; the
//!   number of such attempts is bounded by the endpoints there are (each is tried once).
//! - Maybe processed ([`Failure::MaybeSent`]): tried again only with an idempotent policy, at
//!   most `max_attempts` such attempts per call, and only while the [`RetryBudget`] allows, so
//!   a dying fleet does not see its load multiplied.
//! - An application's answer ([`Failure::Application`]): never tried again.

//!
//! Layout: [`policy`] (what one call may retry: [`CallPolicy`], its retryable codes and
//! backoff), [`budget`] (Finagle's [`RetryBudget`]), and here the decision itself.

pub(crate) mod budget;
pub(crate) mod policy;

pub use budget::RetryBudget;
pub use policy::{Backoff, CallPolicy, RetryableCodes};

use super::failure::Failure;

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try another endpoint.
    Retry,
    /// Give up: the failure stands.
    Stop,
    /// Give up because the retry budget is spent.
    BudgetSpent,
}

/// Decides after an attempt failed with `failure`, when `maybe_sent` attempts of this call (this
/// one included) may have reached a provider. Only a maybe-sent retry takes from `budget`.
pub(crate) fn decide(
    failure: Failure,
    policy: &CallPolicy,
    maybe_sent: usize,
    budget: &RetryBudget,
) -> Decision {
    match failure {
        Failure::NotSent => Decision::Retry,
        Failure::Application => Decision::Stop,
        Failure::MaybeSent if !policy.idempotent || maybe_sent >= policy.max_attempts.max(1) => {
            Decision::Stop
        }
        Failure::MaybeSent if budget.try_withdraw() => Decision::Retry,
        Failure::MaybeSent => Decision::BudgetSpent,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn decisions() {
        let budget = RetryBudget::default();
        let spent = RetryBudget::new(0, 0, Duration::from_secs(1));
        let default = CallPolicy::DEFAULT;
        let idempotent = CallPolicy::IDEMPOTENT;
        let cases = [
            (Failure::NotSent, &default, 0, &budget, Decision::Retry),
            (Failure::MaybeSent, &default, 1, &budget, Decision::Stop),
            (Failure::MaybeSent, &idempotent, 1, &budget, Decision::Retry),
            (Failure::MaybeSent, &idempotent, 5, &budget, Decision::Stop),
            (
                Failure::Application,
                &idempotent,
                1,
                &budget,
                Decision::Stop,
            ),
            (
                Failure::MaybeSent,
                &idempotent,
                1,
                &spent,
                Decision::BudgetSpent,
            ),
        ];
        for (failure, policy, maybe_sent, budget, expected) in cases {
            assert_eq!(
                decide(failure, policy, maybe_sent, budget),
                expected,
                "{failure:?} after {maybe_sent} maybe-sent attempts (idempotent: {})",
                policy.idempotent
            );
        }
    }
}
