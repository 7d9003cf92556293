//! 双随机 draw for 随机查餐厅: which establishments are inspected, and which inspectors go.
//!
//! Pure and deterministic (no I/O, no clock, no OS randomness). Given the published record
//! ([`DrawInput`]: plan id, seed, candidate pool, quotas, inspectors, team size and declared
//! conflicts of interest) anyone can re-run the draw and must obtain exactly the published
//! [`DrawOutcome`]; [`verify`] does that and lists the differences. Every input and output type is
//! serde-serialisable so the record can be stored as JSON and checked offline
//! (`foodcheck draw verify --record FILE`, see [`DrawRecord`] and [`verify_record`]).
//!
//! # Algorithm `foodcheck-draw-v1`
//!
//! This section is the specification. It is meant to be precise enough to reimplement the draw in
//! another language; the golden test at the bottom of this file (`golden_outcome_v1`) is a test
//! vector. Any change to what follows, however small, changes outcomes and requires a new
//! [`ALGORITHM`] name (keep the old one reproducible).
//!
//! Notation: `||` is byte concatenation. `SHA256` is SHA-256 (FIPS 180-4). A UUID's *bytes* are
//! its 16 bytes in RFC 9562 order, i.e. the order in which its hex digits appear in the text form.
//! A UUID's *text* is its lowercase hyphenated form, 36 ASCII characters
//! (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`). Grades are `A` (lowest risk) to `D` (highest risk),
//! ordered `A < B < C < D`; a grade's *letter* is that single ASCII character.
//!
//! ## 1. Canonical pool
//! The pool is a list of candidates (establishment id, grade). Canonical order is ascending by id
//! bytes, compared lexicographically as unsigned bytes. This is the same order as ascending ASCII
//! order of the id texts, because hex digits `0-9a-f` sort in ASCII in their numeric order and the
//! hyphens are at fixed positions. Each id appears at most once. [`canonical_pool`] sorts and
//! removes exact duplicates. It rejects an id that is listed with two different grades. [`draw`]
//! rejects a pool that is not strictly ascending.
//!
//! ## 2. Pool hash
//! `pool_hash` = lowercase hex (64 characters) of `SHA256` over the concatenation, for each
//! candidate of the canonical pool in order, of `text(id) || ":" || letter(grade) || "\n"`.
//! Each candidate contributes 39 bytes. An empty pool hashes the empty string.
//!
//! ## 3. Random stream
//! ```text
//! key = SHA256( "foodcheck-draw-v1" || 0x00 || bytes(plan_id) || 0x00
//!               || seed (its UTF-8 bytes exactly as given, no trimming or normalisation)
//!               || 0x00 || pool_hash (the 64 ASCII hex characters) )
//! ```
//! The seed must contain at least one non-whitespace character ([`DrawError::EmptySeed`]).
//! The stream is the ChaCha20 keystream (20 rounds, Bernstein's original layout) for this
//! 32-byte key, with a zero nonce and a block counter starting at 0. For the first 2^32 blocks
//! this is byte-for-byte the RFC 8439 keystream with a 12-byte zero nonce and initial counter 0,
//! i.e. the bytes obtained by encrypting zeros. (It is what `rand_chacha` 0.3's
//! `ChaCha20Rng::from_seed(key)` yields when only `next_u64` is called.)
//!
//! * `next()` takes the next 8 keystream bytes and reads them as an unsigned **little-endian**
//!   64-bit integer.
//! * `uniform(n)` for `n >= 1` returns an integer in `[0, n)`. Let `r = 2^64 mod n`. Repeat:
//!   `x = next()`; if `x < 2^64 - r`, return `x mod n`. The rejected values make the result exactly
//!   uniform. When `n = 1` one value is still consumed (and always accepted).
//!
//! A single stream serves the whole draw: step 5 consumes it first, then step 6. Nothing else
//! reads from it.
//!
//! ## 4. Quotas per grade ([`allocate`])
//! Let `n_g` be the number of pool candidates of grade `g`.
//!
//! * **Explicit** `{g: q_g}`: `alloc_g = q_g`. A missing grade counts as 0. If any `q_g > n_g`,
//!   the draw fails with [`DrawError::QuotaExceedsPool`].
//! * **Weighted** `{total, weights}`: a weight is a *relative per-establishment draw rate*. An
//!   establishment of a grade with weight 4 is four times as likely to be drawn as one of a grade
//!   with weight 1, so D is drawn more often than A whenever `w_D > w_A`. A grade's share is
//!   therefore proportional to `w_g × n_g`, not to `w_g` alone. A missing grade has weight 0, and
//!   a grade with weight 0 is never drawn. Let `available = Σ n_g` over grades with `w_g > 0`; if
//!   `total > available` the draw fails with [`DrawError::TotalExceedsPool`]. Otherwise, with
//!   exact integer (big enough, e.g. 128-bit) arithmetic:
//!   ```text
//!   alloc_g = 0 for all g;  R = total;  active = { g : w_g > 0 and n_g > 0 }
//!   loop:
//!     if R = 0 or active is empty: stop
//!     W = Σ_{g in active} w_g·n_g
//!     C = { g in active : R·w_g >= W }   -- proportional share R·w_g·n_g/W would reach n_g
//!     if C is not empty:
//!       for g in C: alloc_g = n_g;  R = R - n_g
//!       active = active \ C;  continue loop            -- redistribute the rest
//!     for g in active: alloc_g = floor(R·w_g·n_g / W);  rem_g = (R·w_g·n_g) mod W
//!     L = R - Σ_{g in active} alloc_g                   -- 0 <= L < |active|
//!     add 1 to alloc_g for the L active grades with the largest rem_g,
//!       ties broken in favour of the higher grade (D before C before B before A)
//!     stop
//!   ```
//!   This is the largest-remainder (Hamilton) method with capping. A grade whose proportional
//!   share would reach or exceed its size is drawn completely, and the remainder is re-split among
//!   the other grades by the same rule. The result sums to `total` and never exceeds `n_g`.
//!
//! ## 5. Establishments
//! For each grade `g` in the order A, B, C, D with `k = alloc_g > 0`: let `L` be the ids of the
//! grade-`g` candidates in canonical order (length `m`). Run a partial Fisher–Yates shuffle:
//! `for i in 0..k { j = i + uniform(m - i); swap(L[i], L[j]); emit L[i] }`.
//! `drawn` is the emitted ids in emission order: all of grade A's selections in selection order,
//! then those of B, C and D. Grades with `alloc_g = 0` consume nothing.
//!
//! ## 6. Teams
//! Let `t = team_size` (at least 2). Inspectors are sorted ascending by id bytes (their input order
//! is irrelevant; a repeated id is an error) and each gets `load = 0`. A conflict (回避) names an
//! (inspector, establishment) pair. Conflicts naming an inspector who is not in the list are
//! ignored, and repeated conflicts count once. For each establishment `e` in `drawn` order:
//!
//! 1. `E` = inspectors (in sorted order) with no declared conflict with `e`.
//! 2. If `|E| < t`: `e` is recorded in `unassignable` (it stays in `drawn`). No randomness is
//!    consumed and no load changes.
//! 3. Otherwise, starting from `team = []`, repeat `t` times: let `m` = the minimum load among
//!    `E \ team`; `T` = the members of `E \ team` with load `m`, in sorted order; append
//!    `T[uniform(|T|)]` to `team`. Then add 1 to the load of each team member. The team's
//!    `inspector_ids` are listed in pick order.
//!
//! `teams` lists the assigned establishments in `drawn` order; `unassignable` likewise.
//!
//! **Selection only.** With `team_size = 0` and no inspectors (and therefore no conflicts
//! that count), step 6 is skipped: `teams` and `unassignable` are empty. Sampling plans draw
//! this way (their teams of samplers are assigned afterwards, with the same 回避 rule). Steps
//! 1–5, and so `drawn`, are exactly those of a draw with teams: step 6 reads the stream only
//! after step 5. `team_size = 0` with inspectors, or 1, is an error as before.
//!
//! # Guarantees
//! * Each drawn id is from the pool and is drawn at most once. Exactly `alloc_g` establishments of
//!   grade `g` are drawn. Within a grade, every `alloc_g`-subset is equally likely, so each grade-`g`
//!   establishment is drawn with probability `alloc_g / n_g`. This holds on the assumption that the
//!   ChaCha20 stream is indistinguishable from random.
//! * Every team has exactly `t` distinct inspectors. None of them has a declared conflict with the
//!   establishment. An establishment is unassignable exactly when fewer than `t` inspectors are free
//!   of a declared conflict with it.
//! * **Greedy step.** When a team is formed, each member had no more tasks than any eligible
//!   inspector who was left out. Ties are broken uniformly at random.
//! * **Workload balance.** Call an inspector *eligible* for an assigned (not unassignable) drawn
//!   establishment if they have no conflict with it. If inspector `p` is eligible for every
//!   assigned establishment that inspector `q` is eligible for, then `tasks(q) <= tasks(p) + 1`.
//!   The proof is an induction over the assignment steps using the greedy step above. In
//!   particular:
//!   - with no conflicts (or none touching drawn establishments) all task counts differ by at most
//!     one;
//!   - two inspectors eligible for the same establishments differ by at most one;
//!   - an inspector who has no conflict with any assigned establishment has at least `max - 1`
//!     tasks, where `max` is the largest count of anyone.
//!
//!   Nothing stronger is promised when eligibilities differ. An inspector with many conflicts may
//!   legitimately end with far fewer tasks, and the greedy rule does not minimise the largest
//!   workload globally.
//!
//! # Process note
//! The pool hash is part of the key. So once the seed is fixed, changing the pool changes the whole
//! draw. The seed must still be produced *after* the pool, quotas, inspectors and conflicts are
//! frozen and published (e.g. at a public drawing). Otherwise an operator could try seeds until a
//! favourable draw appears.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// Name and version of the algorithm specified in the module documentation. It is stored in every
/// outcome. Changing the algorithm in any way that changes outcomes requires a new name.
pub const ALGORITHM: &str = "foodcheck-draw-v1";

/// Smallest allowed team: every inspection is done by at least two officers.
pub const MIN_TEAM_SIZE: u32 = 2;

/// At most this many differences are listed by [`verify`] (then a count of the rest).
const MAX_LISTED_DIFFERENCES: usize = 100;

/// 风险分级 used by the draw: A (lowest risk) … D (highest risk).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, ToSchema,
)]
#[schema(as = DrawGrade)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    /// All grades in ascending order (the order the draw processes them in).
    pub const ALL: [Grade; 4] = [Grade::A, Grade::B, Grade::C, Grade::D];

    /// The grade's letter as used in the pool hash.
    pub fn letter(self) -> char {
        match self {
            Grade::A => 'A',
            Grade::B => 'B',
            Grade::C => 'C',
            Grade::D => 'D',
        }
    }

    fn index(self) -> usize {
        match self {
            Grade::A => 0,
            Grade::B => 1,
            Grade::C => 2,
            Grade::D => 3,
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// A candidate in the pool. `id` is the establishment UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = DrawCandidate)]
pub struct Candidate {
    pub id: Uuid,
    pub grade: Grade,
}

/// How many establishments to draw from each grade.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DrawQuotas)]
pub enum Quotas {
    /// Exactly this many per grade (missing grades: 0).
    Explicit(BTreeMap<Grade, u32>),
    /// `total` split by per-establishment rate weights (missing grades: weight 0, never drawn).
    /// See the module documentation, step 4.
    Weighted {
        total: u32,
        weights: BTreeMap<Grade, u32>,
    },
}

/// An inspector (执法人员) who can be assigned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = DrawInspector)]
pub struct Inspector {
    pub id: Uuid,
}

/// A declared conflict of interest (回避): this inspector must not inspect this establishment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = DrawConflict)]
pub struct Conflict {
    pub inspector_id: Uuid,
    pub establishment_id: Uuid,
}

/// Everything the draw depends on. Publishing this (with the outcome) makes the draw re-runnable.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
pub struct DrawInput {
    pub plan_id: Uuid,
    /// Published seed, used as its exact UTF-8 bytes. Must not be empty or whitespace only.
    pub seed: String,
    /// Candidate pool in canonical order (see [`canonical_pool`]).
    pub pool: Vec<Candidate>,
    pub quotas: Quotas,
    /// Inspectors available for this round; order is irrelevant, ids must be distinct.
    pub inspectors: Vec<Inspector>,
    /// Inspectors per team, at least [`MIN_TEAM_SIZE`].
    pub team_size: u32,
    /// Declared conflicts of interest; order and repetition are irrelevant.
    pub conflicts: Vec<Conflict>,
}

/// The inspectors assigned to one drawn establishment, in pick order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = DrawTeam)]
pub struct Team {
    pub establishment_id: Uuid,
    pub inspector_ids: Vec<Uuid>,
}

/// A drawn establishment that could not be given a full team because too few inspectors are free
/// of a declared conflict with it. It remains in [`DrawOutcome::drawn`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = DrawUnassignable)]
pub struct Unassignable {
    pub establishment_id: Uuid,
    /// How many inspectors have no declared conflict with this establishment.
    pub eligible_inspectors: usize,
    /// Human-readable explanation, e.g. "only 1 of 3 inspectors has no declared conflict of
    /// interest with this establishment; the team size is 2".
    pub reason: String,
}

/// The result of a draw, to be published with its [`DrawInput`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
pub struct DrawOutcome {
    /// Always [`ALGORITHM`] for outcomes produced by this module.
    pub algorithm: String,
    pub pool_hash: String,
    /// Number drawn per grade (the result of [`allocate`]); grades with 0 are included.
    pub allocation: BTreeMap<Grade, u32>,
    /// Drawn establishment ids in draw order (grade A..D, then selection order).
    pub drawn: Vec<Uuid>,
    /// Teams for the assignable drawn establishments, in draw order.
    pub teams: Vec<Team>,
    /// Drawn establishments without a full conflict-free team, in draw order.
    pub unassignable: Vec<Unassignable>,
}

/// A published draw: what went in and what came out. This is the file format of
/// `foodcheck draw verify --record FILE`. In JSON (abridged):
///
/// ```json
/// {
///   "input": {
///     "plan_id": "0f0e0d0c-0b0a-4908-8706-050403020100",
///     "seed": "2024-08 第3期 ball 07 19 23",
///     "pool": [{"id": "03e8a1b2-c3d4-4e5f-a617-28394a5b6c7d", "grade": "A"}],
///     "quotas": {"weighted": {"total": 6, "weights": {"A": 1, "B": 2, "C": 3, "D": 4}}},
///     "inspectors": [{"id": "11111111-1111-4111-8111-111111111111"}],
///     "team_size": 2,
///     "conflicts": [{"inspector_id": "11111111-1111-4111-8111-111111111111",
///                    "establishment_id": "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098"}]
///   },
///   "outcome": {
///     "algorithm": "foodcheck-draw-v1",
///     "pool_hash": "1b47eddc…",
///     "allocation": {"A": 1, "B": 1, "C": 2, "D": 2},
///     "drawn": ["5a6b7c8d-9e0f-4a1b-8c2d-3e4f50617283"],
///     "teams": [{"establishment_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f50617283",
///                "inspector_ids": ["11111111-1111-4111-8111-111111111111",
///                                  "44444444-4444-4444-8444-444444444444"]}],
///     "unassignable": [{"establishment_id": "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098",
///                       "eligible_inspectors": 1, "reason": "only 1 of 5 inspectors has …"}]
///   }
/// }
/// ```
/// Explicit quotas are written `{"explicit": {"A": 3, "D": 5}}`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, ToSchema)]
pub struct DrawRecord {
    pub input: DrawInput,
    pub outcome: DrawOutcome,
}

/// Why a draw cannot be made.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DrawError {
    #[error("the seed is empty; a draw needs a published, non-empty seed")]
    EmptySeed,
    #[error(
        "team size {team_size} is too small: every inspection needs at least {MIN_TEAM_SIZE} inspectors"
    )]
    TeamTooSmall { team_size: u32 },
    #[error("the team size is {team_size} but only {available} inspectors are available")]
    NotEnoughInspectors { available: usize, team_size: u32 },
    #[error("inspector {id} is listed more than once")]
    DuplicateInspector { id: Uuid },
    #[error(
        "the quota for grade {grade} is {wanted} but the pool has only {available} grade-{grade} candidates"
    )]
    QuotaExceedsPool {
        grade: Grade,
        wanted: u32,
        available: usize,
    },
    #[error(
        "{wanted} establishments were requested but the pool has only {available} candidates in grades with a positive weight"
    )]
    TotalExceedsPool { wanted: u32, available: usize },
    #[error(
        "the pool is not in canonical order (ascending establishment id, each id once): entry {position} (0-based) is not greater than the entry before it"
    )]
    PoolNotCanonical { position: usize },
    #[error("establishment {id} is listed twice with different grades ({first} and {second})")]
    ConflictingGrades {
        id: Uuid,
        first: Grade,
        second: Grade,
    },
}

/// Sorts candidates into canonical order (ascending id bytes) and removes exact duplicates.
///
/// Deviation from a plain `Vec` return: an id listed with two different grades is a data error.
/// Silently keeping one of them would make the pool hash depend on an arbitrary choice, so it is
/// rejected.
pub fn canonical_pool(mut cands: Vec<Candidate>) -> Result<Vec<Candidate>, DrawError> {
    cands.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.grade.cmp(&b.grade)));
    cands.dedup();
    if let Some(w) = cands.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(DrawError::ConflictingGrades {
            id: w[0].id,
            first: w[0].grade,
            second: w[1].grade,
        });
    }
    Ok(cands)
}

/// SHA-256 over `text(id) ":" letter "\n"` for each candidate in the given order, as lowercase
/// hex. Pass the canonical pool.
/// A public commitment to the declared conflicts of interest (回避) the draw used: SHA-256 over
/// the pairs in canonical order, one line `inspector_id:establishment_id\n` each (lower-case
/// hyphenated UUIDs, ascending, each pair once). The list itself stays internal (who declared a
/// conflict where is personal); an auditor given it recomputes this hash. Inspector ids are
/// random UUIDs, so the hash does not reveal the pairs.
pub fn conflicts_hash(conflicts: &[Conflict]) -> String {
    let pairs: std::collections::BTreeSet<(String, String)> = conflicts
        .iter()
        .map(|c| (c.inspector_id.to_string(), c.establishment_id.to_string()))
        .collect();
    let mut hasher = Sha256::new();
    for (inspector, establishment) in pairs {
        hasher.update(format!("{inspector}:{establishment}\n").as_bytes());
    }
    hex::encode(hasher.finalize())
}

pub fn pool_hash(pool: &[Candidate]) -> String {
    const LINE: usize = 39;
    const LINES_PER_CHUNK: usize = 256;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; LINE * LINES_PER_CHUNK];
    for chunk in pool.chunks(LINES_PER_CHUNK) {
        for (c, line) in chunk.iter().zip(buf.chunks_exact_mut(LINE)) {
            c.id.hyphenated().encode_lower(&mut line[..36]);
            line[36] = b':';
            line[37] = c.grade.letter() as u8;
            line[38] = b'\n';
        }
        hasher.update(&buf[..chunk.len() * LINE]);
    }
    hex::encode(hasher.finalize())
}

/// The ChaCha20 key for a draw (module documentation, step 3).
pub fn rng_key(plan_id: Uuid, seed: &str, pool_hash: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(ALGORITHM.as_bytes());
    hasher.update([0u8]);
    hasher.update(plan_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(seed.as_bytes());
    hasher.update([0u8]);
    hasher.update(pool_hash.as_bytes());
    hasher.finalize().into()
}

/// The draw's random stream (module documentation, step 3), exposed so that other
/// implementations can be checked against it value by value.
pub struct DrawRng(ChaCha20Rng);

impl DrawRng {
    pub fn new(key: [u8; 32]) -> Self {
        DrawRng(ChaCha20Rng::from_seed(key))
    }

    /// `next()`: the next 8 keystream bytes as a little-endian `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// `uniform(n)`: unbiased integer in `[0, n)` by rejection sampling. `n = 0` is never used by
    /// the draw; it returns 0 without consuming anything.
    pub fn uniform(&mut self, n: usize) -> usize {
        // usize -> u64 is lossless on every supported platform (<= 64-bit).
        let n64 = n as u64;
        if n64 == 0 {
            return 0;
        }
        // r = 2^64 mod n; accept x < 2^64 - r, i.e. x <= u64::MAX - r.
        let r = (u64::MAX % n64 + 1) % n64;
        let limit = u64::MAX - r;
        loop {
            let x = self.next_u64();
            if x <= limit {
                // x mod n < n, so it fits back into usize.
                return (x % n64) as usize;
            }
        }
    }
}

fn grade_counts(pool: &[Candidate]) -> [usize; 4] {
    let mut counts = [0usize; 4];
    for c in pool {
        counts[c.grade.index()] += 1;
    }
    counts
}

/// How many establishments to draw per grade (module documentation, step 4). Every grade is
/// present in the result.
pub fn allocate(quotas: &Quotas, pool: &[Candidate]) -> Result<BTreeMap<Grade, u32>, DrawError> {
    let counts = grade_counts(pool);
    let alloc: [u32; 4] = match quotas {
        Quotas::Explicit(per_grade) => {
            let mut alloc = [0u32; 4];
            for g in Grade::ALL {
                let wanted = per_grade.get(&g).copied().unwrap_or(0);
                let available = counts[g.index()];
                if u64::from(wanted) > available as u64 {
                    return Err(DrawError::QuotaExceedsPool {
                        grade: g,
                        wanted,
                        available,
                    });
                }
                alloc[g.index()] = wanted;
            }
            alloc
        }
        Quotas::Weighted { total, weights } => {
            let w: [u32; 4] = Grade::ALL.map(|g| weights.get(&g).copied().unwrap_or(0));
            weighted_split(*total, &w, &counts)?
        }
    };
    Ok(Grade::ALL
        .into_iter()
        .map(|g| (g, alloc[g.index()]))
        .collect())
}

fn weighted_split(total: u32, w: &[u32; 4], n: &[usize; 4]) -> Result<[u32; 4], DrawError> {
    let available: usize = (0..4).filter(|&i| w[i] > 0).map(|i| n[i]).sum();
    if u64::from(total) > available as u64 {
        return Err(DrawError::TotalExceedsPool {
            wanted: total,
            available,
        });
    }
    let exceeded = || DrawError::TotalExceedsPool {
        wanted: total,
        available,
    };
    // Products R·w·n stay far below 2^128: R and w are u32 and n counts candidates held in
    // memory (< 2^60), so u128 arithmetic cannot overflow.
    let mut alloc = [0u32; 4];
    let mut remaining = u128::from(total);
    let mut active: Vec<usize> = (0..4).filter(|&i| w[i] > 0 && n[i] > 0).collect();
    loop {
        if remaining == 0 || active.is_empty() {
            break;
        }
        let big_w: u128 = active
            .iter()
            .map(|&i| u128::from(w[i]) * n[i] as u128)
            .sum();
        let capped: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&i| remaining * u128::from(w[i]) >= big_w)
            .collect();
        if !capped.is_empty() {
            for &i in &capped {
                // n[i] <= total here (its share is at most `remaining`), so it fits in u32.
                alloc[i] = u32::try_from(n[i]).map_err(|_| exceeded())?;
                remaining = remaining.checked_sub(n[i] as u128).ok_or_else(exceeded)?;
            }
            active.retain(|i| !capped.contains(i));
            continue;
        }
        let mut rems: Vec<(u128, usize)> = Vec::with_capacity(active.len());
        let mut assigned: u128 = 0;
        for &i in &active {
            let num = remaining * u128::from(w[i]) * n[i] as u128;
            let share = num / big_w;
            // share < n[i] <= remaining <= u32::MAX here.
            alloc[i] = u32::try_from(share).map_err(|_| exceeded())?;
            assigned += share;
            rems.push((num % big_w, i));
        }
        let leftover = remaining.checked_sub(assigned).ok_or_else(exceeded)?;
        // Largest remainder first; on equal remainders the higher grade (larger index) first.
        rems.sort_unstable_by(|a, b| b.cmp(a));
        for &(_, i) in rems
            .iter()
            .take(usize::try_from(leftover).unwrap_or(usize::MAX))
        {
            alloc[i] += 1;
        }
        remaining = 0;
    }
    if remaining != 0 {
        return Err(exceeded());
    }
    Ok(alloc)
}

fn check_canonical(pool: &[Candidate]) -> Result<(), DrawError> {
    match pool.windows(2).position(|w| w[0].id >= w[1].id) {
        Some(i) => Err(DrawError::PoolNotCanonical { position: i + 1 }),
        None => Ok(()),
    }
}

fn unassignable_reason(eligible: usize, total: usize, team_size: u32) -> String {
    if eligible == 0 {
        format!(
            "all {total} inspectors have a declared conflict of interest with this establishment; the team size is {team_size}"
        )
    } else {
        let verb = if eligible == 1 { "has" } else { "have" };
        format!(
            "only {eligible} of {total} inspectors {verb} no declared conflict of interest with this establishment; the team size is {team_size}"
        )
    }
}

/// Runs the draw (module documentation, steps 1–6).
pub fn draw(input: &DrawInput) -> Result<DrawOutcome, DrawError> {
    if input.seed.trim().is_empty() {
        return Err(DrawError::EmptySeed);
    }
    let selection_only = input.team_size == 0 && input.inspectors.is_empty();
    if input.team_size < MIN_TEAM_SIZE && !selection_only {
        return Err(DrawError::TeamTooSmall {
            team_size: input.team_size,
        });
    }
    check_canonical(&input.pool)?;

    let mut inspectors: Vec<Uuid> = input.inspectors.iter().map(|i| i.id).collect();
    inspectors.sort_unstable();
    if let Some(w) = inspectors.windows(2).find(|w| w[0] == w[1]) {
        return Err(DrawError::DuplicateInspector { id: w[0] });
    }
    let team_size = input.team_size as usize;
    if inspectors.len() < team_size {
        return Err(DrawError::NotEnoughInspectors {
            available: inspectors.len(),
            team_size: input.team_size,
        });
    }

    let allocation = allocate(&input.quotas, &input.pool)?;
    let hash = pool_hash(&input.pool);
    let mut rng = DrawRng::new(rng_key(input.plan_id, &input.seed, &hash));

    // Step 5: establishments.
    let mut drawn: Vec<Uuid> = Vec::with_capacity(allocation.values().map(|&k| k as usize).sum());
    for g in Grade::ALL {
        let k = allocation.get(&g).copied().unwrap_or(0) as usize;
        if k == 0 {
            continue;
        }
        let mut ids: Vec<Uuid> = input
            .pool
            .iter()
            .filter(|c| c.grade == g)
            .map(|c| c.id)
            .collect();
        let m = ids.len();
        // allocate() guarantees k <= m; `min` keeps this safe regardless.
        for i in 0..k.min(m) {
            let j = i + rng.uniform(m - i);
            ids.swap(i, j);
            drawn.push(ids[i]);
        }
    }

    if selection_only {
        return Ok(DrawOutcome {
            algorithm: ALGORITHM.to_string(),
            pool_hash: hash,
            allocation,
            drawn,
            teams: Vec::new(),
            unassignable: Vec::new(),
        });
    }

    // Step 6: teams.
    let index: HashMap<Uuid, usize> = inspectors
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut conflicted: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for c in &input.conflicts {
        if let Some(&i) = index.get(&c.inspector_id) {
            conflicted.entry(c.establishment_id).or_default().push(i);
        }
    }
    let n = inspectors.len();
    let mut load = vec![0usize; n];
    // `excluded[i]`: conflicted with the current establishment, or already on its team.
    let mut excluded = vec![false; n];
    let mut ties: Vec<usize> = Vec::with_capacity(n);
    let mut teams = Vec::new();
    let mut unassignable = Vec::new();
    for &est in &drawn {
        excluded.fill(false);
        let mut eligible = n;
        if let Some(list) = conflicted.get(&est) {
            for &i in list {
                if !excluded[i] {
                    excluded[i] = true;
                    eligible -= 1;
                }
            }
        }
        if eligible < team_size {
            unassignable.push(Unassignable {
                establishment_id: est,
                eligible_inspectors: eligible,
                reason: unassignable_reason(eligible, n, input.team_size),
            });
            continue;
        }
        let mut team: Vec<usize> = Vec::with_capacity(team_size);
        for _ in 0..team_size {
            ties.clear();
            let mut min = usize::MAX;
            for (i, &l) in load.iter().enumerate() {
                if excluded[i] {
                    continue;
                }
                if l < min {
                    min = l;
                    ties.clear();
                }
                if l == min {
                    ties.push(i);
                }
            }
            // eligible >= team_size guarantees ties is non-empty; stay safe regardless.
            let Some(&pick) = ties.get(rng.uniform(ties.len())) else {
                break;
            };
            excluded[pick] = true;
            team.push(pick);
        }
        for &i in &team {
            load[i] += 1;
        }
        teams.push(Team {
            establishment_id: est,
            inspector_ids: team.iter().map(|&i| inspectors[i]).collect(),
        });
    }

    Ok(DrawOutcome {
        algorithm: ALGORITHM.to_string(),
        pool_hash: hash,
        allocation,
        drawn,
        teams,
        unassignable,
    })
}

fn fmt_ids(ids: &[Uuid]) -> String {
    let parts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Re-runs the draw from `input` and compares it with `recorded`. Returns human-readable
/// differences; an empty list means the record is reproduced exactly.
pub fn verify(input: &DrawInput, recorded: &DrawOutcome) -> Vec<String> {
    if recorded.algorithm != ALGORITHM {
        return vec![format!(
            "the record uses algorithm \"{}\" but this program implements \"{ALGORITHM}\"; it cannot re-run that draw",
            recorded.algorithm
        )];
    }
    let fresh = match draw(input) {
        Ok(o) => o,
        Err(e) => return vec![format!("the recorded input does not produce a draw: {e}")],
    };
    let mut diffs: Vec<String> = Vec::new();

    if recorded.pool_hash != fresh.pool_hash {
        diffs.push(format!(
            "pool hash: recorded {}, but the published pool hashes to {}",
            recorded.pool_hash, fresh.pool_hash
        ));
    }

    let grades: BTreeSet<Grade> = recorded
        .allocation
        .keys()
        .chain(fresh.allocation.keys())
        .copied()
        .collect();
    for g in grades {
        let r = recorded.allocation.get(&g).copied().unwrap_or(0);
        let f = fresh.allocation.get(&g).copied().unwrap_or(0);
        if r != f {
            diffs.push(format!(
                "allocation for grade {g}: recorded {r}, recomputed {f}"
            ));
        }
    }

    if recorded.drawn.len() != fresh.drawn.len() {
        diffs.push(format!(
            "number of drawn establishments: recorded {}, recomputed {}",
            recorded.drawn.len(),
            fresh.drawn.len()
        ));
    }
    for (i, (r, f)) in recorded.drawn.iter().zip(&fresh.drawn).enumerate() {
        if r != f {
            diffs.push(format!(
                "drawn establishment #{}: recorded {r}, recomputed {f}",
                i + 1
            ));
        }
    }

    let rec_teams: BTreeMap<Uuid, &Vec<Uuid>> = recorded
        .teams
        .iter()
        .map(|t| (t.establishment_id, &t.inspector_ids))
        .collect();
    let new_teams: BTreeMap<Uuid, &Vec<Uuid>> = fresh
        .teams
        .iter()
        .map(|t| (t.establishment_id, &t.inspector_ids))
        .collect();
    if rec_teams.len() != recorded.teams.len() {
        diffs.push("the record lists more than one team for an establishment".to_string());
    }
    for (est, f) in &new_teams {
        match rec_teams.get(est) {
            None => diffs.push(format!(
                "team for establishment {est}: missing from the record, recomputed {}",
                fmt_ids(f)
            )),
            Some(r) if r != f => diffs.push(format!(
                "team for establishment {est}: recorded {}, recomputed {}",
                fmt_ids(r),
                fmt_ids(f)
            )),
            Some(_) => {}
        }
    }
    for (est, r) in &rec_teams {
        if !new_teams.contains_key(est) {
            diffs.push(format!(
                "team for establishment {est}: recorded {}, but the re-run assigns no team to it",
                fmt_ids(r)
            ));
        }
    }

    let rec_un: BTreeMap<Uuid, &Unassignable> = recorded
        .unassignable
        .iter()
        .map(|u| (u.establishment_id, u))
        .collect();
    let new_un: BTreeMap<Uuid, &Unassignable> = fresh
        .unassignable
        .iter()
        .map(|u| (u.establishment_id, u))
        .collect();
    for (est, f) in &new_un {
        match rec_un.get(est) {
            None => diffs.push(format!(
                "establishment {est} is unassignable on re-run ({}), but the record does not say so",
                f.reason
            )),
            Some(r) if r != f => diffs.push(format!(
                "unassignable establishment {est}: recorded \"{}\" ({} eligible), recomputed \"{}\" ({} eligible)",
                r.reason, r.eligible_inspectors, f.reason, f.eligible_inspectors
            )),
            Some(_) => {}
        }
    }
    for est in rec_un.keys() {
        if !new_un.contains_key(est) {
            diffs.push(format!(
                "the record lists establishment {est} as unassignable, but the re-run does not"
            ));
        }
    }

    if diffs.is_empty() && *recorded != fresh {
        diffs.push(
            "the record has the same content as the re-run but lists teams or unassignable establishments in a different order"
                .to_string(),
        );
    }
    if diffs.len() > MAX_LISTED_DIFFERENCES {
        let more = diffs.len() - MAX_LISTED_DIFFERENCES;
        diffs.truncate(MAX_LISTED_DIFFERENCES);
        diffs.push(format!("... and {more} more differences"));
    }
    diffs
}

/// [`verify`] for a whole published record.
pub fn verify_record(record: &DrawRecord) -> Vec<String> {
    verify(&record.input, &record.outcome)
}

/// Sizes for [`bench_fixture`]. The default is the reference case: a pool of 100,000, 500 drawn,
/// 200 inspectors, 1,000 conflicts, teams of 2.
#[derive(Clone, Debug)]
pub struct BenchParams {
    pub pool_size: usize,
    pub draw_total: u32,
    pub inspectors: usize,
    pub conflicts: usize,
    pub team_size: u32,
    /// Seed for generating the fixture (not the draw seed).
    pub fixture_seed: u64,
}

impl Default for BenchParams {
    fn default() -> Self {
        BenchParams {
            pool_size: 100_000,
            draw_total: 500,
            inspectors: 200,
            conflicts: 1_000,
            team_size: 2,
            fixture_seed: 1,
        }
    }
}

/// A generated, deterministic workload for benchmarking. Build it once (not timed) with
/// [`bench_fixture`], then time [`BenchFixture::run`].
#[derive(Clone, Debug)]
pub struct BenchFixture {
    /// Candidates in arbitrary (generation) order, as they would come from the database.
    pub candidates: Vec<Candidate>,
    /// The rest of the input; its `pool` is empty and is filled by [`BenchFixture::run`].
    pub template: DrawInput,
}

/// Generates a deterministic fixture. Grades are A 40%, B 30%, C 20%, D 10%. The quotas are
/// weighted A 1, B 2, C 3, D 4. Conflicts pair random inspectors with random pool establishments;
/// half of them are aimed at the first 1% of candidates so that some drawn establishments are
/// affected.
pub fn bench_fixture(params: &BenchParams) -> BenchFixture {
    let mut rng = DrawRng::new(rng_key(
        Uuid::nil(),
        &format!("bench-fixture-{}", params.fixture_seed),
        "",
    ));
    let random_uuid = |rng: &mut DrawRng| {
        let hi = u128::from(rng.next_u64());
        let lo = u128::from(rng.next_u64());
        uuid::Builder::from_random_bytes(((hi << 64) | lo).to_be_bytes()).into_uuid()
    };
    let candidates: Vec<Candidate> = (0..params.pool_size)
        .map(|_| {
            let id = random_uuid(&mut rng);
            let grade = match rng.uniform(10) {
                0..=3 => Grade::A,
                4..=6 => Grade::B,
                7..=8 => Grade::C,
                _ => Grade::D,
            };
            Candidate { id, grade }
        })
        .collect();
    let inspectors: Vec<Inspector> = (0..params.inspectors)
        .map(|_| Inspector {
            id: random_uuid(&mut rng),
        })
        .collect();
    let hot = (params.pool_size / 100).max(1);
    let conflicts: Vec<Conflict> = if candidates.is_empty() || inspectors.is_empty() {
        Vec::new()
    } else {
        (0..params.conflicts)
            .map(|k| {
                let span = if k % 2 == 0 { hot } else { candidates.len() };
                Conflict {
                    inspector_id: inspectors[rng.uniform(inspectors.len())].id,
                    establishment_id: candidates[rng.uniform(span.min(candidates.len()))].id,
                }
            })
            .collect()
    };
    let weights: BTreeMap<Grade, u32> =
        [(Grade::A, 1), (Grade::B, 2), (Grade::C, 3), (Grade::D, 4)].into();
    BenchFixture {
        candidates,
        template: DrawInput {
            plan_id: random_uuid(&mut rng),
            seed: "bench".to_string(),
            pool: Vec::new(),
            quotas: Quotas::Weighted {
                total: params.draw_total,
                weights,
            },
            inspectors,
            team_size: params.team_size,
            conflicts,
        },
    }
}

impl BenchFixture {
    /// The whole pure pipeline: canonical sorting of the candidates, pool hashing, allocation,
    /// the draw and team assignment. The input clone it needs (about 2 MB for 100,000
    /// candidates) is included in the time.
    pub fn run(&self) -> Result<DrawOutcome, DrawError> {
        let pool = canonical_pool(self.candidates.clone())?;
        let input = DrawInput {
            pool,
            ..self.template.clone()
        };
        draw(&input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn cand(n: u128, grade: Grade) -> Candidate {
        Candidate { id: uid(n), grade }
    }

    #[test]
    fn conflicts_hash_ignores_order_and_repeats_and_sees_every_pair() {
        let c = |i, e| Conflict {
            inspector_id: uid(i),
            establishment_id: uid(e),
        };
        let a = conflicts_hash(&[c(1, 10), c(2, 20)]);
        assert_eq!(a, conflicts_hash(&[c(2, 20), c(1, 10), c(1, 10)]));
        assert_ne!(a, conflicts_hash(&[c(1, 10)]));
        assert_ne!(a, conflicts_hash(&[c(1, 20), c(2, 10)]));
        // Empty list: the hash of nothing, published as such.
        assert_eq!(
            conflicts_hash(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // The documented line format, so an auditor can recompute it by hand.
        let line = format!("{}:{}\n", uid(1), uid(10));
        assert_eq!(
            conflicts_hash(&[c(1, 10)]),
            hex::encode(Sha256::digest(line.as_bytes()))
        );
    }

    fn map(pairs: &[(Grade, u32)]) -> BTreeMap<Grade, u32> {
        pairs.iter().copied().collect()
    }

    /// `per_grade[g]` candidates of each grade, ids spread over the UUID space.
    fn even_pool(per_grade: [usize; 4]) -> Vec<Candidate> {
        let mut v = Vec::new();
        let mut k: u128 = 1;
        for g in Grade::ALL {
            for _ in 0..per_grade[g.index()] {
                v.push(cand(
                    k.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                    g,
                ));
                k += 1;
            }
        }
        canonical_pool(v).expect("distinct ids")
    }

    fn inspectors(n: u128) -> Vec<Inspector> {
        (0..n)
            .map(|i| Inspector {
                id: uid(0xAAAA_0000 + i),
            })
            .collect()
    }

    fn base_input() -> DrawInput {
        DrawInput {
            plan_id: uid(0x2024_0001),
            seed: "2024-08 第1期 public drawing 37-12-05".to_string(),
            pool: even_pool([50, 50, 50, 50]),
            quotas: Quotas::Explicit(map(&[
                (Grade::A, 3),
                (Grade::B, 4),
                (Grade::C, 5),
                (Grade::D, 6),
            ])),
            inspectors: inspectors(7),
            team_size: 2,
            conflicts: Vec::new(),
        }
    }

    // ---------- random stream ----------

    /// Straightforward ChaCha20 block function (Bernstein layout: 64-bit counter, 64-bit nonce).
    fn chacha20_block(key: &[u8; 32], counter: u64) -> [u8; 64] {
        fn qr(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(16);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(12);
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(8);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(7);
        }
        let mut init = [0u32; 16];
        init[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
        for i in 0..8 {
            init[4 + i] =
                u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
        }
        init[12] = counter as u32;
        init[13] = (counter >> 32) as u32;
        let mut s = init;
        for _ in 0..10 {
            qr(&mut s, 0, 4, 8, 12);
            qr(&mut s, 1, 5, 9, 13);
            qr(&mut s, 2, 6, 10, 14);
            qr(&mut s, 3, 7, 11, 15);
            qr(&mut s, 0, 5, 10, 15);
            qr(&mut s, 1, 6, 11, 12);
            qr(&mut s, 2, 7, 8, 13);
            qr(&mut s, 3, 4, 9, 14);
        }
        let mut out = [0u8; 64];
        for i in 0..16 {
            out[4 * i..4 * i + 4].copy_from_slice(&s[i].wrapping_add(init[i]).to_le_bytes());
        }
        out
    }

    #[test]
    fn stream_is_chacha20_keystream_read_little_endian() {
        // RFC 8439 appendix A.1 test vector #1: all-zero key and nonce, counter 0.
        let mut zero = DrawRng::new([0u8; 32]);
        assert_eq!(
            zero.next_u64(),
            u64::from_le_bytes([0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90])
        );
        assert_eq!(
            chacha20_block(&[0u8; 32], 0)[..8],
            [0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]
        );
        // And the independent block function agrees for a real key across several of rand_chacha's
        // internal 4-block buffers.
        let key = rng_key(uid(7), "seed", &pool_hash(&[]));
        let mut rng = DrawRng::new(key);
        for block in 0..20u64 {
            let bytes = chacha20_block(&key, block);
            for word in bytes.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(word);
                assert_eq!(rng.next_u64(), u64::from_le_bytes(b), "block {block}");
            }
        }
    }

    #[test]
    fn uniform_follows_the_documented_rejection_rule() {
        // n = 2^63 + 1 rejects almost half of all values, so the rule is really exercised.
        for n in [1usize, 2, 3, 7, 10, 1000, (1usize << 63) + 1, usize::MAX] {
            let key = rng_key(uid(n as u128), "uniform", "");
            let mut a = DrawRng::new(key);
            let mut b = DrawRng::new(key);
            for _ in 0..200 {
                let got = a.uniform(n);
                let r = (1u128 << 64) % n as u128;
                let expected = loop {
                    let x = u128::from(b.next_u64());
                    if x < (1u128 << 64) - r {
                        break (x % n as u128) as usize;
                    }
                };
                assert_eq!(got, expected, "n = {n}");
                assert!(got < n);
            }
        }
        let mut r = DrawRng::new([1; 32]);
        assert_eq!(r.uniform(0), 0);
    }

    #[test]
    fn rng_key_is_the_documented_hash() {
        let plan = uid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut bytes = b"foodcheck-draw-v1\0".to_vec();
        bytes.extend_from_slice(plan.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice("种子 seed".as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(b"abc");
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(rng_key(plan, "种子 seed", "abc"), expected);
    }

    // ---------- pool ----------

    #[test]
    fn canonical_pool_sorts_dedups_and_rejects_conflicting_grades() {
        let a = cand(3, Grade::A);
        let b = cand(1, Grade::D);
        let c = cand(2, Grade::B);
        let pool = canonical_pool(vec![a, b, c, a, b]).expect("ok");
        assert_eq!(pool, vec![b, c, a]);
        assert_eq!(
            canonical_pool(vec![a, cand(3, Grade::C)]),
            Err(DrawError::ConflictingGrades {
                id: uid(3),
                first: Grade::A,
                second: Grade::C
            })
        );
        assert_eq!(canonical_pool(Vec::new()), Ok(Vec::new()));
    }

    #[test]
    fn pool_hash_is_sha256_of_the_documented_lines() {
        let pool = even_pool([2, 1, 0, 1]);
        let mut text = String::new();
        for c in &pool {
            text.push_str(&format!("{}:{}\n", c.id.hyphenated(), c.grade));
        }
        assert_eq!(
            pool_hash(&pool),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_eq!(
            pool_hash(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Many candidates: crosses the internal chunking.
        let big = even_pool([300, 200, 100, 50]);
        let text: String = big
            .iter()
            .map(|c| format!("{}:{}\n", c.id, c.grade.letter()))
            .collect();
        assert_eq!(
            pool_hash(&big),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
    }

    #[test]
    fn changing_one_pool_member_changes_the_hash() {
        let pool = even_pool([5, 5, 5, 5]);
        let h = pool_hash(&pool);
        for i in 0..pool.len() {
            let mut regraded = pool.clone();
            regraded[i].grade = if pool[i].grade == Grade::A {
                Grade::B
            } else {
                Grade::A
            };
            assert_ne!(pool_hash(&regraded), h);
            let mut replaced = pool.clone();
            replaced[i].id = uid(pool[i].id.as_u128() ^ 1);
            assert_ne!(pool_hash(&replaced), h);
            let mut removed = pool.clone();
            removed.remove(i);
            assert_ne!(pool_hash(&removed), h);
        }
    }

    // ---------- allocation ----------

    #[test]
    fn explicit_quotas_are_taken_as_given_and_checked() {
        let pool = even_pool([3, 2, 1, 0]);
        assert_eq!(
            allocate(
                &Quotas::Explicit(map(&[(Grade::A, 2), (Grade::C, 1)])),
                &pool
            ),
            Ok(map(&[
                (Grade::A, 2),
                (Grade::B, 0),
                (Grade::C, 1),
                (Grade::D, 0)
            ]))
        );
        assert_eq!(
            allocate(&Quotas::Explicit(map(&[(Grade::B, 3)])), &pool),
            Err(DrawError::QuotaExceedsPool {
                grade: Grade::B,
                wanted: 3,
                available: 2
            })
        );
        assert_eq!(
            DrawError::QuotaExceedsPool {
                grade: Grade::B,
                wanted: 3,
                available: 2
            }
            .to_string(),
            "the quota for grade B is 3 but the pool has only 2 grade-B candidates"
        );
    }

    fn weighted(total: u32, w: [u32; 4]) -> Quotas {
        Quotas::Weighted {
            total,
            weights: Grade::ALL.into_iter().map(|g| (g, w[g.index()])).collect(),
        }
    }

    #[test]
    fn weights_d_over_a_draw_more_d_on_an_even_pool() {
        let pool = even_pool([100, 100, 100, 100]);
        let alloc = allocate(&weighted(50, [1, 2, 3, 4]), &pool).expect("ok");
        // 50 × (1, 2, 3, 4) / 10 = 5, 10, 15, 20 exactly.
        assert_eq!(
            alloc,
            map(&[
                (Grade::A, 5),
                (Grade::B, 10),
                (Grade::C, 15),
                (Grade::D, 20)
            ])
        );
        let alloc = allocate(&weighted(7, [1, 2, 3, 4]), &pool).expect("ok");
        // Shares 0.7, 1.4, 2.1, 2.8 → floors 0, 1, 2, 2 (5); remainders .7 .4 .1 .8 → D, A.
        assert_eq!(
            alloc,
            map(&[(Grade::A, 1), (Grade::B, 1), (Grade::C, 2), (Grade::D, 3)])
        );
        assert!(alloc[&Grade::D] > alloc[&Grade::A]);
    }

    #[test]
    fn weights_are_per_establishment_rates() {
        // Many more A than D establishments: per-establishment rate is still 4× for D.
        let pool = even_pool([400, 0, 0, 100]);
        let alloc = allocate(&weighted(80, [1, 0, 0, 4]), &pool).expect("ok");
        assert_eq!(
            alloc,
            map(&[(Grade::A, 40), (Grade::B, 0), (Grade::C, 0), (Grade::D, 40)])
        );
    }

    #[test]
    fn equal_remainders_favour_the_higher_grade() {
        let pool = even_pool([10, 10, 0, 0]);
        // Shares 0.5 and 0.5 → B gets the single leftover seat.
        assert_eq!(
            allocate(&weighted(1, [1, 1, 0, 0]), &pool),
            Ok(map(&[
                (Grade::A, 0),
                (Grade::B, 1),
                (Grade::C, 0),
                (Grade::D, 0)
            ]))
        );
    }

    #[test]
    fn a_short_grade_is_drawn_completely_and_the_excess_redistributed() {
        let pool = even_pool([100, 100, 100, 5]);
        // W = 100 + 200 + 300 + 20 = 620; D's share 200·20/620 ≈ 6.45 > 5 → D capped at 5.
        // Remaining 195 over W = 600: A 32.5, B 65, C 97.5 → 32, 65, 97 + 1 leftover to C
        // (A and C tie on remainder; the higher grade wins).
        let alloc = allocate(&weighted(200, [1, 2, 3, 4]), &pool).expect("ok");
        assert_eq!(
            alloc,
            map(&[
                (Grade::A, 32),
                (Grade::B, 65),
                (Grade::C, 98),
                (Grade::D, 5)
            ])
        );
        // Cascading caps: D then C are exhausted, the rest goes to A and B.
        let pool = even_pool([50, 50, 3, 2]);
        let alloc = allocate(&weighted(100, [1, 1, 10, 10]), &pool).expect("ok");
        assert_eq!(
            alloc,
            map(&[(Grade::A, 47), (Grade::B, 48), (Grade::C, 3), (Grade::D, 2)])
        );
        // Everything that has a weight.
        let alloc = allocate(&weighted(105, [1, 1, 10, 10]), &pool).expect("ok");
        assert_eq!(
            alloc,
            map(&[(Grade::A, 50), (Grade::B, 50), (Grade::C, 3), (Grade::D, 2)])
        );
    }

    #[test]
    fn weighted_errors() {
        let pool = even_pool([2, 2, 2, 2]);
        assert_eq!(
            allocate(&weighted(9, [1, 1, 1, 1]), &pool),
            Err(DrawError::TotalExceedsPool {
                wanted: 9,
                available: 8
            })
        );
        // Grades without weight do not count as available.
        assert_eq!(
            allocate(&weighted(5, [0, 0, 1, 1]), &pool),
            Err(DrawError::TotalExceedsPool {
                wanted: 5,
                available: 4
            })
        );
        assert_eq!(
            allocate(&weighted(1, [0, 0, 0, 0]), &pool),
            Err(DrawError::TotalExceedsPool {
                wanted: 1,
                available: 0
            })
        );
        let missing = Quotas::Weighted {
            total: 2,
            weights: map(&[(Grade::D, 1)]),
        };
        assert_eq!(
            allocate(&missing, &pool),
            Ok(map(&[
                (Grade::A, 0),
                (Grade::B, 0),
                (Grade::C, 0),
                (Grade::D, 2)
            ]))
        );
        assert_eq!(
            allocate(&weighted(0, [1, 1, 1, 1]), &[]),
            Ok(map(&[
                (Grade::A, 0),
                (Grade::B, 0),
                (Grade::C, 0),
                (Grade::D, 0)
            ]))
        );
    }

    #[test]
    fn large_numbers_do_not_overflow() {
        let w = [u32::MAX, u32::MAX - 1, 1, u32::MAX];
        let counts = [3_000_000_000usize, 1, 5, 2_000_000_000];
        let alloc = weighted_split(u32::MAX, &w, &counts).expect("ok");
        let sum: u64 = alloc.iter().map(|&a| u64::from(a)).sum();
        assert_eq!(sum, u64::from(u32::MAX));
        for i in 0..4 {
            assert!(alloc[i] as usize <= counts[i]);
        }
    }

    // ---------- draw ----------

    #[test]
    fn input_errors() {
        let mut i = base_input();
        i.seed = "  ".into();
        assert_eq!(draw(&i), Err(DrawError::EmptySeed));
        let mut i = base_input();
        i.team_size = 1;
        assert_eq!(draw(&i), Err(DrawError::TeamTooSmall { team_size: 1 }));
        let mut i = base_input();
        i.team_size = 0;
        assert_eq!(draw(&i), Err(DrawError::TeamTooSmall { team_size: 0 }));
        let mut i = base_input();
        i.team_size = 8;
        assert_eq!(
            draw(&i),
            Err(DrawError::NotEnoughInspectors {
                available: 7,
                team_size: 8
            })
        );
        let mut i = base_input();
        i.inspectors.push(i.inspectors[3]);
        assert_eq!(
            draw(&i),
            Err(DrawError::DuplicateInspector {
                id: i.inspectors[3].id
            })
        );
        let mut i = base_input();
        i.pool.swap(10, 11);
        assert_eq!(draw(&i), Err(DrawError::PoolNotCanonical { position: 11 }));
        let mut i = base_input();
        let dup = i.pool[5];
        i.pool.insert(5, dup);
        assert_eq!(draw(&i), Err(DrawError::PoolNotCanonical { position: 6 }));
        let mut i = base_input();
        i.quotas = Quotas::Explicit(map(&[(Grade::D, 51)]));
        assert!(matches!(
            draw(&i),
            Err(DrawError::QuotaExceedsPool {
                grade: Grade::D,
                ..
            })
        ));
    }

    #[test]
    fn same_input_gives_identical_outcome_and_json() {
        let mut input = base_input();
        input.conflicts = vec![Conflict {
            inspector_id: input.inspectors[0].id,
            establishment_id: input.pool[0].id,
        }];
        let a = draw(&input).expect("draw");
        let b = draw(&input).expect("draw");
        assert_eq!(a, b);
        let ja = serde_json::to_string(&a).expect("json");
        assert_eq!(ja, serde_json::to_string(&b).expect("json"));
        // Inspector and conflict order are irrelevant.
        let mut shuffled = input.clone();
        shuffled.inspectors.reverse();
        shuffled.conflicts.push(shuffled.conflicts[0]);
        assert_eq!(draw(&shuffled).expect("draw"), a);
        // Round trip through JSON still verifies.
        let record = DrawRecord {
            input: input.clone(),
            outcome: a.clone(),
        };
        let text = serde_json::to_string_pretty(&record).expect("json");
        let back: DrawRecord = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, record);
        assert!(verify_record(&back).is_empty());
    }

    #[test]
    fn different_seed_gives_a_different_draw() {
        let input = base_input();
        let first = draw(&input).expect("draw").drawn;
        let mut seen = BTreeSet::new();
        seen.insert(first.clone());
        for k in 0..20 {
            let mut other = input.clone();
            other.seed = format!("{}{k}", input.seed);
            let d = draw(&other).expect("draw").drawn;
            // Same establishments per grade count, different selection.
            assert_eq!(d.len(), first.len());
            assert!(seen.insert(d), "seed {k} repeated a draw");
        }
        let mut other = input.clone();
        other.plan_id = uid(0x2024_0002);
        assert_ne!(draw(&other).expect("draw").drawn, first);
    }

    #[test]
    fn quotas_per_grade_are_met_exactly() {
        let input = base_input();
        let out = draw(&input).expect("draw");
        let grade_of: HashMap<Uuid, Grade> = input.pool.iter().map(|c| (c.id, c.grade)).collect();
        let mut counts = BTreeMap::new();
        for id in &out.drawn {
            *counts.entry(grade_of[id]).or_insert(0u32) += 1;
        }
        assert_eq!(
            counts,
            map(&[(Grade::A, 3), (Grade::B, 4), (Grade::C, 5), (Grade::D, 6)])
        );
        assert_eq!(out.allocation, counts);
        // Draw order: grade order first.
        let grades: Vec<Grade> = out.drawn.iter().map(|id| grade_of[id]).collect();
        let mut sorted = grades.clone();
        sorted.sort();
        assert_eq!(grades, sorted);
        assert_eq!(out.teams.len(), 18);
        assert!(out.unassignable.is_empty());
    }

    #[test]
    fn too_few_conflict_free_inspectors_is_reported_not_dropped() {
        let mut input = base_input();
        input.inspectors = inspectors(3);
        input.quotas = Quotas::Explicit(map(&[(Grade::D, 50)])); // every D is drawn
        let target = input
            .pool
            .iter()
            .rev()
            .find(|c| c.grade == Grade::D)
            .expect("D")
            .id;
        let other = input
            .pool
            .iter()
            .find(|c| c.grade == Grade::D)
            .expect("D")
            .id;
        for ins in &input.inspectors[..2] {
            input.conflicts.push(Conflict {
                inspector_id: ins.id,
                establishment_id: target,
            });
        }
        for ins in &input.inspectors {
            input.conflicts.push(Conflict {
                inspector_id: ins.id,
                establishment_id: other,
            });
        }
        let out = draw(&input).expect("draw");
        assert!(out.drawn.contains(&target) && out.drawn.contains(&other));
        let mut un = out.unassignable.clone();
        un.sort_by_key(|u| u.establishment_id);
        let mut expected = vec![
            Unassignable {
                establishment_id: target,
                eligible_inspectors: 1,
                reason: "only 1 of 3 inspectors has no declared conflict of interest with this establishment; the team size is 2".into(),
            },
            Unassignable {
                establishment_id: other,
                eligible_inspectors: 0,
                reason: "all 3 inspectors have a declared conflict of interest with this establishment; the team size is 2".into(),
            },
        ];
        expected.sort_by_key(|u| u.establishment_id);
        assert_eq!(un, expected);
        assert_eq!(out.teams.len(), 48);
        assert!(out
            .teams
            .iter()
            .all(|t| t.establishment_id != target && t.establishment_id != other));
    }

    #[test]
    fn verify_detects_tampering() {
        let mut input = base_input();
        input.inspectors = inspectors(3);
        let victim = input
            .pool
            .iter()
            .find(|c| c.grade == Grade::A)
            .expect("an A")
            .id;
        input.conflicts = input
            .inspectors
            .iter()
            .map(|i| Conflict {
                inspector_id: i.id,
                establishment_id: victim,
            })
            .collect();
        input.quotas = Quotas::Explicit(map(&[(Grade::A, 50), (Grade::D, 2)]));
        let out = draw(&input).expect("draw");
        assert!(verify(&input, &out).is_empty());
        assert_eq!(out.unassignable.len(), 1);

        // An establishment swapped for one that was not drawn.
        let mut t = out.clone();
        let not_drawn = input
            .pool
            .iter()
            .find(|c| !out.drawn.contains(&c.id))
            .expect("some not drawn")
            .id;
        t.drawn[51] = not_drawn;
        let d = verify(&input, &t);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with("drawn establishment #52: recorded"),
            "{d:?}"
        );

        // Two drawn establishments exchanged in order.
        let mut t = out.clone();
        t.drawn.swap(0, 1);
        assert_eq!(verify(&input, &t).len(), 2);

        // A team member changed.
        let mut t = out.clone();
        t.teams[3].inspector_ids[0] = uid(0xdead_beef);
        let d = verify(&input, &t);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("team for establishment"), "{d:?}");

        // Team members reordered (pick order is part of the record).
        let mut t = out.clone();
        t.teams[0].inspector_ids.reverse();
        assert_eq!(verify(&input, &t).len(), 1);

        // Teams listed in a different order.
        let mut t = out.clone();
        t.teams.swap(0, 1);
        assert_eq!(
            verify(&input, &t),
            vec!["the record has the same content as the re-run but lists teams or unassignable establishments in a different order".to_string()]
        );

        // A hash changed.
        let mut t = out.clone();
        t.pool_hash = "0".repeat(64);
        let d = verify(&input, &t);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("pool hash: recorded 0000"), "{d:?}");

        // The published pool changed after the fact: different hash and a different draw.
        let mut tampered_input = input.clone();
        let b = tampered_input
            .pool
            .iter()
            .position(|c| c.grade == Grade::B)
            .expect("a B");
        tampered_input.pool[b].grade = Grade::C;
        assert!(verify(&tampered_input, &out)
            .iter()
            .any(|m| m.starts_with("pool hash:")));

        // Unassignable hidden or invented.
        let mut t = out.clone();
        t.unassignable.clear();
        assert_eq!(verify(&input, &t).len(), 1);
        let mut t = out.clone();
        t.teams.remove(5);
        assert_eq!(verify(&input, &t).len(), 1);

        // Allocation edited.
        let mut t = out.clone();
        t.allocation.insert(Grade::B, 1);
        assert_eq!(
            verify(&input, &t),
            vec!["allocation for grade B: recorded 1, recomputed 0".to_string()]
        );

        // Another algorithm.
        let mut t = out.clone();
        t.algorithm = "foodcheck-draw-v0".into();
        assert_eq!(verify(&input, &t).len(), 1);

        // Input that no longer draws.
        let mut bad = input.clone();
        bad.seed.clear();
        assert_eq!(
            verify(&bad, &out),
            vec!["the recorded input does not produce a draw: the seed is empty; a draw needs a published, non-empty seed".to_string()]
        );

        // Many differences are capped.
        let mut t = out.clone();
        t.drawn.reverse();
        for team in &mut t.teams {
            team.inspector_ids.reverse();
        }
        let d = verify(&input, &t);
        assert_eq!(d.len(), MAX_LISTED_DIFFERENCES + 1);
        assert!(d[MAX_LISTED_DIFFERENCES].starts_with("... and "));
    }

    #[test]
    fn schemas_are_generated() {
        let schema = <DrawOutcome as utoipa::PartialSchema>::schema();
        let json = serde_json::to_string(&schema).expect("json");
        assert!(
            json.contains("pool_hash") && json.contains("DrawTeam"),
            "{json}"
        );
        let schema = <DrawRecord as utoipa::PartialSchema>::schema();
        let json = serde_json::to_string(&schema).expect("json");
        assert!(
            json.contains("DrawInput") && json.contains("DrawOutcome"),
            "{json}"
        );
        let name = <Grade as utoipa::ToSchema>::name();
        assert_eq!(name, "DrawGrade");
    }

    #[test]
    fn quotas_json_shape() {
        let q = weighted(3, [1, 0, 0, 2]);
        assert_eq!(
            serde_json::to_value(&q).expect("json"),
            serde_json::json!({"weighted": {"total": 3, "weights": {"A": 1, "B": 0, "C": 0, "D": 2}}})
        );
        let e: Quotas = serde_json::from_str(r#"{"explicit": {"D": 4}}"#).expect("parse");
        assert_eq!(e, Quotas::Explicit(map(&[(Grade::D, 4)])));
    }

    #[test]
    fn bench_fixture_runs() {
        let fx = bench_fixture(&BenchParams {
            pool_size: 2_000,
            draw_total: 50,
            inspectors: 20,
            conflicts: 100,
            team_size: 3,
            fixture_seed: 9,
        });
        let a = fx.run().expect("draw");
        assert_eq!(a.drawn.len(), 50);
        assert_eq!(a, fx.run().expect("draw"));
        assert_eq!(
            bench_fixture(&BenchParams::default()).candidates.len(),
            100_000
        );
    }

    // ---------- golden vector ----------

    /// GOLDEN TEST VECTOR for `foodcheck-draw-v1`. If this fails, the algorithm's output changed.
    /// Do not update the expected values to make it pass: published draws must stay reproducible.
    /// A deliberate change needs a new ALGORITHM name (keeping v1 re-runnable) and a new vector.
    #[test]
    fn golden_outcome_v1() {
        let e = |s: &str| Uuid::parse_str(s).expect("uuid");
        let raw = vec![
            Candidate {
                id: e("9f1c2e4a-7b3d-4c5e-8f60-1a2b3c4d5e6f"),
                grade: Grade::A,
            },
            Candidate {
                id: e("03e8a1b2-c3d4-4e5f-a617-28394a5b6c7d"),
                grade: Grade::A,
            },
            Candidate {
                id: e("c7d8e9f0-0a1b-4c2d-9e3f-405162738495"),
                grade: Grade::A,
            },
            Candidate {
                id: e("5a6b7c8d-9e0f-4a1b-8c2d-3e4f50617283"),
                grade: Grade::A,
            },
            Candidate {
                id: e("e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7"),
                grade: Grade::B,
            },
            Candidate {
                id: e("2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"),
                grade: Grade::B,
            },
            Candidate {
                id: e("7c8d9eaf-b0c1-4d2e-bf30-415263748596"),
                grade: Grade::B,
            },
            Candidate {
                id: e("b4c5d6e7-f809-4a1b-8c2d-3e4f5a6b7c8d"),
                grade: Grade::C,
            },
            Candidate {
                id: e("1d2e3f40-5162-4738-a495-a6b7c8d9e0f1"),
                grade: Grade::C,
            },
            Candidate {
                id: e("f0e1d2c3-b4a5-4968-8776-655443322110"),
                grade: Grade::C,
            },
            Candidate {
                id: e("6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098"),
                grade: Grade::D,
            },
            Candidate {
                id: e("8a9b0c1d-2e3f-4051-9263-748596a7b8c9"),
                grade: Grade::D,
            },
        ];
        let ins = [
            e("11111111-1111-4111-8111-111111111111"),
            e("22222222-2222-4222-8222-222222222222"),
            e("33333333-3333-4333-8333-333333333333"),
            e("44444444-4444-4444-8444-444444444444"),
            e("55555555-5555-4555-8555-555555555555"),
        ];
        let d1 = e("6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098");
        let mut conflicts: Vec<Conflict> = ins[..4]
            .iter()
            .map(|&i| Conflict {
                inspector_id: i,
                establishment_id: d1,
            })
            .collect();
        conflicts.push(Conflict {
            inspector_id: ins[4],
            establishment_id: e("8a9b0c1d-2e3f-4051-9263-748596a7b8c9"),
        });
        let input = DrawInput {
            plan_id: e("0f0e0d0c-0b0a-4908-8706-050403020100"),
            seed: "2024-08 第3期 ball 07 19 23".to_string(),
            pool: canonical_pool(raw).expect("pool"),
            quotas: weighted(6, [1, 2, 3, 4]),
            inspectors: ins.iter().map(|&id| Inspector { id }).collect(),
            team_size: 2,
            conflicts,
        };
        let out = draw(&input).expect("draw");
        assert_eq!(
            out.pool_hash,
            "1b47eddc267c053bac2a5bfa2ee6d801383724b88de48b3aa3b7d36a9f746650"
        );
        let key = rng_key(input.plan_id, &input.seed, &out.pool_hash);
        assert_eq!(
            hex::encode(key),
            "6a58e8c340d2a2d4b58dabaf44bd59cf7e499ebfcfabdf78d9c2beb4b3dda12a"
        );
        let mut rng = DrawRng::new(key);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            vec![
                6715500763080591073,
                15148262404613932775,
                12380703200588337098
            ]
        );
        let expected = serde_json::json!({
          "algorithm": "foodcheck-draw-v1",
          "pool_hash": "1b47eddc267c053bac2a5bfa2ee6d801383724b88de48b3aa3b7d36a9f746650",
          "allocation": { "A": 1, "B": 1, "C": 2, "D": 2 },
          "drawn": [
            "5a6b7c8d-9e0f-4a1b-8c2d-3e4f50617283",
            "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7",
            "f0e1d2c3-b4a5-4968-8776-655443322110",
            "b4c5d6e7-f809-4a1b-8c2d-3e4f5a6b7c8d",
            "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098",
            "8a9b0c1d-2e3f-4051-9263-748596a7b8c9"
          ],
          "teams": [
            {
              "establishment_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f50617283",
              "inspector_ids": [
                "11111111-1111-4111-8111-111111111111",
                "44444444-4444-4444-8444-444444444444"
              ]
            },
            {
              "establishment_id": "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7",
              "inspector_ids": [
                "55555555-5555-4555-8555-555555555555",
                "33333333-3333-4333-8333-333333333333"
              ]
            },
            {
              "establishment_id": "f0e1d2c3-b4a5-4968-8776-655443322110",
              "inspector_ids": [
                "22222222-2222-4222-8222-222222222222",
                "55555555-5555-4555-8555-555555555555"
              ]
            },
            {
              "establishment_id": "b4c5d6e7-f809-4a1b-8c2d-3e4f5a6b7c8d",
              "inspector_ids": [
                "11111111-1111-4111-8111-111111111111",
                "44444444-4444-4444-8444-444444444444"
              ]
            },
            {
              "establishment_id": "8a9b0c1d-2e3f-4051-9263-748596a7b8c9",
              "inspector_ids": [
                "33333333-3333-4333-8333-333333333333",
                "22222222-2222-4222-8222-222222222222"
              ]
            }
          ],
          "unassignable": [
            {
              "establishment_id": "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098",
              "eligible_inspectors": 1,
              "reason": "only 1 of 5 inspectors has no declared conflict of interest with this establishment; the team size is 2"
            }
          ]
        });
        assert_eq!(serde_json::to_value(&out).expect("json"), expected);
        assert!(verify(&input, &out).is_empty());
    }

    // ---------- properties ----------

    #[derive(Debug, Clone)]
    struct Case {
        input: DrawInput,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            prop::collection::btree_map(any::<u128>(), 0usize..4, 0..30),
            prop::collection::btree_set(any::<u128>(), 1..9),
            2u32..5,
            prop::collection::vec((any::<Index>(), any::<Index>(), any::<bool>()), 0..80),
            any::<bool>(),
            [
                any::<Index>(),
                any::<Index>(),
                any::<Index>(),
                any::<Index>(),
            ],
            [0u32..5, 0u32..5, 0u32..5, 0u32..5],
            any::<Index>(),
            "[a-z0-9 ]{0,4}[a-z0-9]",
            any::<u128>(),
        )
            .prop_map(
                |(pool, ins, team_size, conf, explicit, q, w, total, seed, plan)| {
                    let pool: Vec<Candidate> = pool
                        .into_iter()
                        .map(|(id, g)| cand(id, Grade::ALL[g]))
                        .collect();
                    let pool = canonical_pool(pool).expect("distinct");
                    let inspectors: Vec<Inspector> =
                        ins.into_iter().map(|i| Inspector { id: uid(i) }).collect();
                    let conflicts: Vec<Conflict> = if pool.is_empty() {
                        Vec::new()
                    } else {
                        conf.iter()
                            .map(|(i, e, known)| Conflict {
                                inspector_id: if *known {
                                    inspectors[i.index(inspectors.len())].id
                                } else {
                                    uid(i.index(1000) as u128) // not an inspector: ignored
                                },
                                establishment_id: pool[e.index(pool.len())].id,
                            })
                            .collect()
                    };
                    let counts = grade_counts(&pool);
                    let quotas = if explicit {
                        Quotas::Explicit(
                            Grade::ALL
                                .into_iter()
                                .map(|g| (g, q[g.index()].index(counts[g.index()] + 1) as u32))
                                .collect(),
                        )
                    } else {
                        let available: usize =
                            (0..4).filter(|&i| w[i] > 0).map(|i| counts[i]).sum();
                        Quotas::Weighted {
                            total: total.index(available + 1) as u32,
                            weights: Grade::ALL.into_iter().map(|g| (g, w[g.index()])).collect(),
                        }
                    };
                    Case {
                        input: DrawInput {
                            plan_id: uid(plan),
                            seed,
                            pool,
                            quotas,
                            inspectors,
                            team_size,
                            conflicts,
                        },
                    }
                },
            )
    }

    /// Checks everything the module documentation guarantees about one outcome.
    fn check_outcome(input: &DrawInput, out: &DrawOutcome) -> Result<(), TestCaseError> {
        let grade_of: HashMap<Uuid, Grade> = input.pool.iter().map(|c| (c.id, c.grade)).collect();
        let allocation = allocate(&input.quotas, &input.pool).expect("valid quotas");
        prop_assert_eq!(&out.allocation, &allocation);
        prop_assert_eq!(&out.pool_hash, &pool_hash(&input.pool));
        prop_assert_eq!(&out.algorithm, ALGORITHM);

        // Drawn: from the pool, unique, exact per-grade counts, grade order.
        let mut seen = BTreeSet::new();
        let mut counts: BTreeMap<Grade, u32> = Grade::ALL.into_iter().map(|g| (g, 0)).collect();
        let mut last_grade = Grade::A;
        for id in &out.drawn {
            let g = grade_of.get(id).copied();
            prop_assert!(g.is_some(), "drawn id not in pool");
            let g = g.unwrap_or(Grade::A);
            prop_assert!(seen.insert(*id), "drawn twice");
            prop_assert!(g >= last_grade, "not in grade order");
            last_grade = g;
            *counts.entry(g).or_default() += 1;
        }
        prop_assert_eq!(&counts, &allocation);

        // Every drawn establishment is in exactly one of teams / unassignable, in draw order.
        let mut merged: Vec<Uuid> = Vec::new();
        let (mut ti, mut ui) = (0, 0);
        for id in &out.drawn {
            if out.teams.get(ti).map(|t| t.establishment_id) == Some(*id) {
                ti += 1;
            } else if out.unassignable.get(ui).map(|u| u.establishment_id) == Some(*id) {
                ui += 1;
            } else {
                prop_assert!(
                    false,
                    "drawn establishment {} neither assigned nor unassignable",
                    id
                );
            }
            merged.push(*id);
        }
        prop_assert_eq!(ti, out.teams.len());
        prop_assert_eq!(ui, out.unassignable.len());

        // Eligibility, computed independently.
        let ins: BTreeSet<Uuid> = input.inspectors.iter().map(|i| i.id).collect();
        let conflict: BTreeSet<(Uuid, Uuid)> = input
            .conflicts
            .iter()
            .map(|c| (c.inspector_id, c.establishment_id))
            .collect();
        let eligible = |est: Uuid| -> BTreeSet<Uuid> {
            ins.iter()
                .copied()
                .filter(|i| !conflict.contains(&(*i, est)))
                .collect()
        };
        let t = input.team_size as usize;
        let mut load: BTreeMap<Uuid, usize> = ins.iter().map(|i| (*i, 0)).collect();
        let mut elig_sets: BTreeMap<Uuid, BTreeSet<Uuid>> =
            ins.iter().map(|i| (*i, BTreeSet::new())).collect();
        let (mut ti, mut ui) = (0, 0);
        for id in &out.drawn {
            let el = eligible(*id);
            if out.teams.get(ti).map(|t| t.establishment_id) == Some(*id) {
                let team = &out.teams[ti].inspector_ids;
                ti += 1;
                prop_assert!(el.len() >= t, "team formed with too few eligible");
                prop_assert_eq!(team.len(), t);
                let members: BTreeSet<Uuid> = team.iter().copied().collect();
                prop_assert_eq!(members.len(), t, "duplicate inspector in a team");
                for m in &members {
                    prop_assert!(ins.contains(m), "unknown inspector");
                    prop_assert!(!conflict.contains(&(*m, *id)), "回避 violated");
                }
                // Greedy step: every member had no more tasks than any eligible non-member.
                let max_member = members.iter().map(|m| load[m]).max().unwrap_or(0);
                for other in el.difference(&members) {
                    prop_assert!(max_member <= load[other], "greedy step violated");
                }
                for m in &members {
                    *load.entry(*m).or_default() += 1;
                }
                for i in &el {
                    elig_sets.entry(*i).or_default().insert(*id);
                }
            } else {
                let u = &out.unassignable[ui];
                ui += 1;
                prop_assert!(el.len() < t, "unassignable although enough are eligible");
                prop_assert_eq!(u.eligible_inspectors, el.len());
                let needle = format!("team size is {t}");
                prop_assert!(u.reason.contains(&needle));
            }
        }
        // Balance: elig(q) ⊆ elig(p) ⇒ tasks(q) ≤ tasks(p) + 1.
        for (p, ep) in &elig_sets {
            for (q, eq) in &elig_sets {
                if eq.is_subset(ep) {
                    prop_assert!(
                        load[q] <= load[p] + 1,
                        "balance violated: {} has {} tasks, {} has {}",
                        q,
                        load[q],
                        p,
                        load[p]
                    );
                }
            }
        }
        // Task counts add up.
        let total_tasks: usize = load.values().sum();
        prop_assert_eq!(total_tasks, out.teams.len() * t);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A selection-only draw (no inspectors, team size 0) draws exactly the establishments
        /// the same draw with teams draws, and has no teams; it verifies like any draw.
        #[test]
        fn selection_only_draws_the_same_establishments(case in arb_case()) {
            let input = &case.input;
            let only = DrawInput { inspectors: Vec::new(), team_size: 0, conflicts: Vec::new(), ..input.clone() };
            let out = draw(&only).expect("a selection-only draw of a valid pool");
            prop_assert!(out.teams.is_empty() && out.unassignable.is_empty());
            prop_assert!(verify(&only, &out).is_empty());
            if let Ok(full) = draw(input) {
                prop_assert_eq!(&full.drawn, &out.drawn);
                prop_assert_eq!(&full.allocation, &out.allocation);
            }
        }

        #[test]
        fn draw_properties(case in arb_case()) {
            let input = &case.input;
            match draw(input) {
                Err(DrawError::NotEnoughInspectors { available, team_size }) => {
                    prop_assert!(available < team_size as usize);
                    prop_assert!(input.inspectors.len() < input.team_size as usize);
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
                Ok(out) => {
                    check_outcome(input, &out)?;
                    prop_assert_eq!(&draw(input).expect("again"), &out);
                    prop_assert!(verify(input, &out).is_empty());
                    let json = serde_json::to_string(&DrawRecord { input: input.clone(), outcome: out.clone() })
                        .expect("json");
                    let back: DrawRecord = serde_json::from_str(&json).expect("parse");
                    prop_assert!(verify_record(&back).is_empty());
                }
            }
        }

        #[test]
        fn balance_without_conflicts_is_within_one(
            n_ins in 2u128..12, team in 2u32..5, k in 0u32..40, seed in "[a-z]{1,8}"
        ) {
            prop_assume!(team as u128 <= n_ins);
            let mut input = base_input();
            input.inspectors = inspectors(n_ins);
            input.team_size = team;
            input.seed = seed;
            input.quotas = weighted(k, [1, 2, 3, 4]);
            let out = draw(&input).expect("draw");
            let mut load: BTreeMap<Uuid, usize> = input.inspectors.iter().map(|i| (i.id, 0)).collect();
            for t in &out.teams {
                for i in &t.inspector_ids {
                    *load.entry(*i).or_default() += 1;
                }
            }
            let max = load.values().max().copied().unwrap_or(0);
            let min = load.values().min().copied().unwrap_or(0);
            prop_assert!(max - min <= 1, "loads {:?}", load);
            prop_assert_eq!(out.teams.len(), k as usize);
        }

        #[test]
        fn canonical_order_is_string_order(ids in prop::collection::vec(any::<u128>(), 0..50)) {
            let pool = canonical_pool(ids.iter().map(|&i| cand(i, Grade::B)).collect()).expect("ok");
            let mut texts: Vec<String> = ids.iter().map(|&i| uid(i).to_string()).collect();
            texts.sort();
            texts.dedup();
            let got: Vec<String> = pool.iter().map(|c| c.id.to_string()).collect();
            prop_assert_eq!(got, texts);
        }

        #[test]
        fn weighted_allocation_properties(
            n in [0usize..200, 0usize..200, 0usize..200, 0usize..200],
            w in [0u32..6, 0u32..6, 0u32..6, 0u32..6],
            total in any::<Index>(),
        ) {
            let available: usize = (0..4).filter(|&i| w[i] > 0).map(|i| n[i]).sum();
            let total = total.index(available + 1) as u32;
            let alloc = weighted_split(total, &w, &n).expect("within pool");
            prop_assert_eq!(alloc.iter().map(|&a| a as usize).sum::<usize>(), total as usize);
            for i in 0..4 {
                prop_assert!(alloc[i] as usize <= n[i]);
                if w[i] == 0 {
                    prop_assert_eq!(alloc[i], 0);
                }
            }
            // Per-establishment rates follow the weights up to rounding:
            // w_g >= w_h > 0  ⇒  alloc_g/n_g >= alloc_h/n_h - 1/n_g - 1/n_h.
            for g in 0..4 {
                for h in 0..4 {
                    if g != h && w[h] > 0 && w[g] >= w[h] && n[g] > 0 && n[h] > 0 {
                        let lhs = alloc[g] as usize * n[h] + n[h] + n[g];
                        let rhs = alloc[h] as usize * n[g];
                        prop_assert!(lhs >= rhs, "rates inverted: {:?} {:?} {:?}", alloc, w, n);
                    }
                }
            }
            if (total as usize) > available {
                prop_assert!(false);
            }
            prop_assert!(weighted_split(total + 1, &w, &n).is_ok() == ((total as usize) < available));
        }
    }
}
