//! Quorum arithmetic: majorities of votes and of replicated indexes.

use alloc::vec::Vec;

use super::types::{LogIndex, NodeId};

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Not decided yet.
    Pending,
}

/// Votes received in one election (or pre-vote round).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoteTally {
    granted: Vec<NodeId>,
    refused: Vec<NodeId>,
}

impl VoteTally {
    /// Records `voter`'s answer; a second answer from the same voter is ignored.
    pub fn record(&mut self, voter: NodeId, granted: bool) {
        if self.granted.contains(&voter) || self.refused.contains(&voter) {
            return;
        }
        if granted {
            self.granted.push(voter);
        } else {
            self.refused.push(voter);
        }
    }

    /// Counts the answers of `voters` only (answers from non-voters do not count).
    pub fn result(&self, voters: &[NodeId]) -> VoteResult {
        let quorum = voters.len() / 2 + 1;
        let granted = self.granted.iter().filter(|v| voters.contains(v)).count();
        let refused = self.refused.iter().filter(|v| voters.contains(v)).count();
        if granted >= quorum {
            VoteResult::Won
        } else if refused > voters.len() - quorum {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }
}

/// The highest index replicated on a majority, given each voter's match index.
pub fn committed_index(matches: &mut [LogIndex]) -> LogIndex {
    if matches.is_empty() {
        return 0;
    }
    matches.sort_unstable_by(|a, b| b.cmp(a));
    matches[matches.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn committed_index_is_the_majority_minimum() {
        let cases: [(&[LogIndex], LogIndex); 7] = [
            (&[], 0),
            (&[5], 5),
            (&[5, 3], 3),
            (&[5, 3, 1], 3),
            (&[1, 5, 3, 2], 2),
            (&[9, 9, 1, 1, 1], 1),
            (&[9, 9, 9, 1, 1], 9),
        ];
        for (matches, expected) in cases {
            assert_eq!(
                committed_index(&mut matches.to_vec()),
                expected,
                "{matches:?}"
            );
        }
    }

    #[test]
    fn votes_win_lose_or_wait() {
        let voters = vec![1, 2, 3, 4, 5];
        let mut tally = VoteTally::default();
        tally.record(1, true);
        tally.record(2, true);
        assert_eq!(tally.result(&voters), VoteResult::Pending);
        tally.record(2, false); // duplicate answer ignored
        tally.record(9, true); // not a voter
        assert_eq!(tally.result(&voters), VoteResult::Pending);
        tally.record(3, true);
        assert_eq!(tally.result(&voters), VoteResult::Won);

        let mut tally = VoteTally::default();
        tally.record(1, true);
        for v in [2, 3] {
            tally.record(v, false);
        }
        assert_eq!(tally.result(&voters), VoteResult::Pending);
        tally.record(4, false);
        assert_eq!(tally.result(&voters), VoteResult::Lost);
    }
}
