// The sharded mode's guided tours (one file each in ../tours/, the step
// format of ../scenarios.js, planned with tour-kit.js).

import { shardMove } from "../tours/shard-move.js";

/** Every sharded tour, in the order the page lists them. */
export const SHARDED_SCENARIOS = [shardMove];
