//! Which run a master's schedule starts with when it (re)starts under an epoch: from the record,
//! the floor, and what this schedule itself claimed and started.
//!
//! Normally the run after the highest claim in either node. One exception: this schedule claimed
//! a run under the epoch it is master of now and never started it (the claim's reply was lost,
//! or its lease ended between the claim and the run, and it is master again without a
//! takeover), and no higher claim is there (its own claim is the highest, or not visible: not
//! applied). Then that run is still to do, and it is done, at once (re-claimed first, as every
//! run is). Nothing else can have run it:
//! - a run follows its claim, and every claim is a fenced write that checks the companion's
//!   `mzxid` is the claimer's epoch;
//! - the companion's `mzxid` is the current epoch, so no takeover, hand-over or repair wrote it
//!   since that epoch began (a `mzxid` only grows): no other contender could claim meanwhile;
//! - this schedule knows (in its process) that it did not start that run.
//!
//! A claim this schedule did not make (another process's, or one before this process started)
//! is never run again: a claimed run is run at most once, and only a change of master can skip
//! one.

use super::record::JobRecord;

/// What a schedule knows of its own claims (kept in its process, lost with it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Claims {
    /// The last `seq` this schedule claimed in both nodes: a floor for the next one, should
    /// both go back (a wiped ZooKeeper).
    pub(super) last: u64,
    /// A claim this schedule sent under `(epoch, seq)` (perhaps applied: its reply may be lost)
    /// and whose run it has not started.
    pub(super) unstarted: Option<(i64, u64)>,
}

/// Where a schedule starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Start {
    /// The first run to claim.
    pub(super) seq: u64,
    /// `seq` is a claim of ours never started: due at once.
    pub(super) unstarted: bool,
    /// The highest claim in either node (when it was made decides when the next run is due).
    pub(super) last: Option<JobRecord>,
}

/// Where a schedule that is master under `epoch` starts, given the record, the floor and its
/// own claims.
pub(super) fn start(
    epoch: i64,
    record: Option<JobRecord>,
    floor: Option<JobRecord>,
    claims: Claims,
) -> Start {
    let last = match (record, floor) {
        (Some(r), Some(f)) => Some(if f.seq > r.seq { f } else { r }),
        (r, f) => r.or(f),
    };
    let ours = |seq: u64| match last {
        Some(top) => top.seq < seq || (top.seq == seq && top.epoch == epoch),
        None => true,
    };
    match claims.unstarted {
        Some((claimed, seq)) if claimed == epoch && ours(seq) => Start {
            seq,
            unstarted: true,
            last,
        },
        _ => Start {
            seq: last.map_or(0, |r| r.seq).max(claims.last) + 1,
            unstarted: false,
            last,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(seq: u64, epoch: i64) -> Option<JobRecord> {
        Some(JobRecord {
            seq,
            epoch,
            at_ms: 1_700_000_000_000,
        })
    }

    fn claims(last: u64, unstarted: Option<(i64, u64)>) -> Claims {
        Claims { last, unstarted }
    }

    #[test]
    fn a_claim_of_ours_under_this_epoch_never_started_is_run() {
        // In both nodes (the record's reply lost, or the lease ended before the run).
        let s = start(7, claim(4, 7), claim(4, 7), claims(3, Some((7, 4))));
        assert_eq!((s.seq, s.unstarted), (4, true));
        let s = start(7, claim(4, 7), claim(4, 7), claims(4, Some((7, 4))));
        assert_eq!((s.seq, s.unstarted), (4, true));
        // In the floor only (the record never written).
        let s = start(7, claim(3, 7), claim(4, 7), claims(3, Some((7, 4))));
        assert_eq!((s.seq, s.unstarted), (4, true));
    }

    #[test]
    fn anything_else_goes_on_after_the_highest_claim() {
        // Started (the memory is cleared before the run starts).
        assert_eq!(start(7, claim(4, 7), claim(4, 7), claims(4, None)).seq, 5);
        // Master again under a new epoch: the claim is an old epoch's, skipped at the change.
        assert_eq!(
            start(9, claim(4, 7), claim(4, 7), claims(4, Some((7, 4)))).seq,
            5
        );
        // Our claim not applied (or not visible yet): still ours to run.
        let s = start(7, claim(3, 7), claim(3, 7), claims(3, Some((7, 4))));
        assert_eq!((s.seq, s.unstarted), (4, true));
        let s = start(7, claim(3, 7), claim(3, 7), claims(4, Some((7, 4))));
        assert_eq!((s.seq, s.unstarted), (4, true));
        // A higher claim, or another epoch's claim of that seq: not ours to run.
        assert_eq!(
            start(7, claim(5, 7), claim(5, 7), claims(4, Some((7, 4)))).seq,
            6
        );
        assert_eq!(
            start(7, claim(4, 6), claim(4, 6), claims(3, Some((7, 4)))).seq,
            5
        );
        // Someone else's claim (another schedule, another process): never run again.
        assert_eq!(start(7, claim(4, 7), claim(4, 7), claims(0, None)).seq, 5);
        assert_eq!(start(7, claim(3, 7), claim(4, 7), claims(0, None)).seq, 5);
        // Either node deleted by hand: the other decides.
        assert_eq!(start(7, None, claim(4, 5), claims(0, None)).seq, 5);
        assert_eq!(start(7, claim(4, 5), None, claims(0, None)).seq, 5);
        // Both gone (a wipe): this schedule's own last claim.
        assert_eq!(start(7, None, None, claims(12, None)).seq, 13);
        assert_eq!(start(7, None, None, claims(0, None)).seq, 1);
    }
}
