// Package maglev builds weighted Maglev consistent-hashing lookup tables
// (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016) for the BPF datapath.
//
// A table is a slice of M backend IDs, M prime (see Primes). The datapath
// hashes a packet's 5-tuple with HashTuple and forwards to
// table[hash % M] (see Lookup). The control plane and every node must build
// the very same table from the same inputs, so everything here is
// deterministic and architecture-independent: backends are ordered by Key,
// keys are hashed with a fixed, documented 64-bit hash (hashKey), and no
// map iteration, randomness or floating point is involved.
//
// # Population without permutations
//
// Classic Maglev gives each backend i a permutation of the table slots,
// perm_i[j] = (offset_i + j*skip_i) mod M, and lets backends take turns
// claiming the next still-empty slot of their own permutation. Materialising
// those N×M permutations (as some implementations do) costs O(N·M) time and
// memory; it is never needed, because a backend only ever looks at the next
// element of its own permutation. We keep one cursor per backend
// (pos_i = offset_i + next_i*skip_i mod M, advanced by adding skip_i and
// subtracting M on overflow — no division) and write the claiming backend's
// index straight into the destination table, using an out-of-range index as
// the "empty" marker. After population the indices are rewritten to IDs in
// place. Scratch memory is therefore O(N), the output is the only O(M)
// allocation, and the work is the classic O(M log M) expected probes.
//
// # Weights
//
// Classic Maglev lets every backend take one turn per round. Here turns
// are handed out in continuous time instead: backend i, with weight w_i and
// a phase u_i in [0, 1) taken from a hash of its Key, has taken
//
//	turns_i(t) = max(1, floor(t*w_i + u_i))
//
// turns by time t >= 0. So every backend takes its first turn at t = 0
// (in Key order), and its turn j+1 (j >= 1) at t = (j+1 - u_i)/w_i; turns
// are taken in order of time, simultaneous ones in Key order, until all M
// slots are claimed. Why this shape:
//
//   - shares follow the weights: when the table fills at time T, backend i
//     has T*w_i + u_i - frac(...) ± 1 turns, and the phases make the
//     rounding errors average out instead of all backends of one weight
//     rounding the same way (which, with 999 backends at weight 1 and one
//     at 1000, costs the big one ~0.7% of its share);
//   - every active backend owns at least one slot (the turn at t = 0),
//     hence the requirement M >= active backends;
//   - with equal weights every backend takes turn j+1 in the window
//     (j/w, (j+1)/w], i.e. it is classic Maglev round by round (rounds
//     ordered by phase), and shares are floor(M/N) or ceil(M/N);
//   - a backend's schedule depends only on its own Key, weight and the
//     seed, not on the other backends or on the largest weight, so adding,
//     removing or re-weighting one backend only inserts, drops or moves
//     that backend's turns (the probing still cascades a little, as in
//     classic Maglev; the consistency tests measure it); and multiplying
//     every weight by the same factor changes nothing.
//
// Times are compared exactly in integers: after j turns a backend's next
// turn is due at due/w with due = (j+1)*2^32 - phase (phase = u*2^32 from
// the key hash), and due_a/w_a < due_b/w_b is decided with a 128-bit cross
// multiplication. Backends of equal weight always take their turns in the
// same cyclic order, so only the D distinct weights need a priority queue
// (schedule.go): population costs O(N log N + M log D) plus the probes,
// whatever the weight ratios (1 vs 1000, or 1 vs 2^32-1), and needs O(N)
// scratch memory. With equal weights D = 1 and it is a plain cycle.
package maglev
