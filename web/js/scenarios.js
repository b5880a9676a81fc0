// The guided tours, one file each in tours/. Each step plans its actions on
// a scratch copy of the run (so conditions like "until a leader exists" are
// found by simulating ahead); the page then plays the real run up to the
// step's end while the text says what to watch. Node ids are chosen at run
// time from what the cluster did; `facts` carries names and facts from step
// to step.
//
// A step is { title, plan(ctx, facts), text(facts), watch(facts), expect(facts, end) }:
// - plan acts and advances time on the scratch run (see planContext);
// - expect lists the claims its text makes, as [claim, holds] pairs checked
//   against `end`, the run at the end of the step (see query()). The guide
//   checks them when it plans the step and says so if one does not hold; the
//   end-to-end tests check them again on the run the page actually played.
//
// Each tour fixes its configuration on top of the page's defaults (the
// settings a person changed do not leak into it), so what the text says is
// what the real simulator does with that seed. The core's scenario files
// (core/testdata/*.txt) are the reference for each situation.

import { firstElection } from "./tours/first-election.js";
import { splitVote } from "./tours/split-vote.js";
import { leaderCrash } from "./tours/leader-crash.js";
import { staleLeader } from "./tours/stale-leader.js";
import { figure8 } from "./tours/figure-8.js";
import { logRepair } from "./tours/log-repair.js";
import { snapshot } from "./tours/snapshot.js";
import { readIndex } from "./tours/read-index.js";
import { followerReads } from "./tours/follower-reads.js";
import { membership } from "./tours/membership.js";

export { planContext, query, failedClaims, termAt } from "./tour-kit.js";

/** Every tour, in the order the page lists them. */
export const SCENARIOS = [firstElection, splitVote, leaderCrash, staleLeader, figure8, logRepair, snapshot, readIndex, followerReads, membership];
