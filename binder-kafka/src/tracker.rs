//! Offset bookkeeping: which delivered records of each partition are still in flight, so only
//! the contiguous completed prefix is ever committed.
//!
//! Records of a partition are handed out in offset order, but with `concurrency` > 1 they may
//! complete out of order. A partition's commit position advances past a record only once it and
//! every record delivered before it completed. A revoked partition, or one seeked back for
//! redelivery, gets a new generation: settling a record of an older generation commits nothing.

use std::collections::{BTreeMap, HashMap};

/// A topic partition.
pub type Tp = (String, i32);

#[derive(Debug, Default)]
struct PartitionState {
    generation: u64,
    /// Delivered offsets → completed?
    pending: BTreeMap<i64, bool>,
    /// The next offset to commit (last completed prefix + 1), if anything completed.
    commit: Option<i64>,
}

/// In-flight offsets of every partition of one consumer.
#[derive(Debug, Default)]
pub struct Tracker {
    parts: HashMap<Tp, PartitionState>,
    next_generation: u64,
}

impl Tracker {
    fn fresh(&mut self) -> PartitionState {
        self.next_generation += 1;
        PartitionState {
            generation: self.next_generation,
            ..Default::default()
        }
    }

    /// Records that `offset` of `tp` was handed out; returns its generation.
    pub fn delivered(&mut self, tp: &Tp, offset: i64) -> u64 {
        if !self.parts.contains_key(tp) {
            let s = self.fresh();
            self.parts.insert(tp.clone(), s);
        }
        let s = self.parts.get_mut(tp).expect("inserted above");
        s.pending.insert(offset, false);
        s.generation
    }

    /// Records that `offset` completed; returns the new commit position when the contiguous
    /// prefix advanced (`None` when it did not, or the record is from an old generation).
    pub fn completed(&mut self, tp: &Tp, generation: u64, offset: i64) -> Option<i64> {
        let s = self.parts.get_mut(tp)?;
        if s.generation != generation {
            return None;
        }
        match s.pending.get_mut(&offset) {
            Some(done) => *done = true,
            None => return None,
        }
        let mut advanced = None;
        while let Some((&o, &done)) = s.pending.iter().next() {
            if !done {
                break;
            }
            s.pending.remove(&o);
            advanced = Some(o + 1);
        }
        if advanced.is_some() {
            s.commit = advanced;
        }
        advanced
    }

    /// Gives `offset` back for redelivery: returns the offset to seek to (the first record not
    /// completed, so nothing in flight is skipped) and starts a new generation for `tp`.
    /// `None` when the record is from an old generation (already being redelivered or revoked).
    pub fn requeued(&mut self, tp: &Tp, generation: u64, offset: i64) -> Option<i64> {
        let current = self.parts.get(tp)?;
        if current.generation != generation {
            return None;
        }
        let first = current
            .pending
            .iter()
            .find(|(_, done)| !**done)
            .map(|(o, _)| *o)
            .unwrap_or(offset)
            .min(offset);
        let commit = current.commit;
        let mut s = self.fresh();
        s.commit = commit;
        self.parts.insert(tp.clone(), s);
        Some(first)
    }

    /// Whether a record of `generation` still belongs to the current assignment of `tp`.
    pub fn is_current(&self, tp: &Tp, generation: u64) -> bool {
        self.parts
            .get(tp)
            .is_some_and(|s| s.generation == generation)
    }

    /// Forgets `tp` (revoked): later settles of its records commit nothing.
    pub fn revoked(&mut self, tp: &Tp) {
        self.parts.remove(tp);
    }

    /// The commit position of every partition that completed something.
    pub fn commit_positions(&self) -> Vec<(Tp, i64)> {
        self.parts
            .iter()
            .filter_map(|(tp, s)| s.commit.map(|c| (tp.clone(), c)))
            .collect()
    }

    /// Records handed out and not completed.
    pub fn in_flight(&self) -> usize {
        self.parts
            .values()
            .map(|s| s.pending.values().filter(|d| !**d).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> Tp {
        ("t".into(), 0)
    }

    #[test]
    fn commits_only_the_contiguous_prefix() {
        let mut t = Tracker::default();
        let g = t.delivered(&tp(), 10);
        t.delivered(&tp(), 11);
        t.delivered(&tp(), 12);
        assert_eq!(t.completed(&tp(), g, 12), None, "11 and 10 still in flight");
        assert_eq!(t.completed(&tp(), g, 10), Some(11));
        assert_eq!(t.completed(&tp(), g, 11), Some(13));
        assert_eq!(t.commit_positions(), vec![(tp(), 13)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn revoked_partition_commits_nothing_later() {
        let mut t = Tracker::default();
        let g = t.delivered(&tp(), 5);
        t.revoked(&tp());
        assert_eq!(t.completed(&tp(), g, 5), None);
        let g2 = t.delivered(&tp(), 5);
        assert_ne!(g, g2);
        assert_eq!(t.completed(&tp(), g2, 5), Some(6));
    }

    #[test]
    fn requeue_seeks_to_first_unfinished() {
        let mut t = Tracker::default();
        let g = t.delivered(&tp(), 1);
        t.delivered(&tp(), 2);
        t.delivered(&tp(), 3);
        assert_eq!(t.completed(&tp(), g, 3), None);
        assert_eq!(t.requeued(&tp(), g, 2), Some(1));
        assert_eq!(t.completed(&tp(), g, 1), None, "old generation");
        assert_eq!(t.requeued(&tp(), g, 1), None);
    }
}
