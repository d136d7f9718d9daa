//! Exact search over substring tables: multi-index hashing with a cost switch to a linear
//! pass over table 0, plus the tail.
//!
//! Multi-index hashing (Norouzi, Punjani & Fleet): with the code cut into m substrings, a code
//! within distance d of the query has some substring within floor(d / m) of the query's. Here
//! a table is probed by *slot* (the first `slot_bits` bits of its substring), and a slot's
//! prefix distance p_j never exceeds the substring distance, so the pigeonhole argument holds
//! for the prefixes too. Stage (s, j) reads the slots of table j at prefix distance exactly s
//! from the query's, in the order (0,0), (0,1), .., (0,m-1), (1,0), ..; after stage (s, j) every
//! code within distance m*s + j has been collected (a code not collected has p_i >= s+1 for
//! i <= j and p_i >= s for i > j, and its distance is at least the sum of its p_i). Rows at
//! or below that bound are returned in distance order as the executor asks for them.
//!
//! A code is collected from only one table: the first (s, j) at which any table reaches it,
//! which the code's own prefix distances tell. Table 0 holds rows (code and TID); the other
//! tables hold each distinct code once, and the rows of a code collected there are looked up
//! in table 0 when they are returned.
//!
//! PostgreSQL reads whole pages, and the slots of a Hamming ball are scattered through a
//! table, so probing costs about a page a slot: beyond some radius one linear pass over table
//! 0 (the SIMD kernels compare ~600 codes a page) is cheaper. The search estimates stage costs
//! from the slot counts and switches, continuing from the bound already proven:
//! - a radius query compares the stages up to its radius with a linear pass, once;
//! - a k-NN query does not know k (the executor asks for rows one at a time). It runs the cheap
//!   stages (up to 1/16 of a linear pass), which find the near neighbours of learned codes;
//!   then it compares the stages up to where the rows it plans for (ten, or twice what the
//!   executor has taken) must lie with a linear pass: no farther than uniformly random codes
//!   would put them, nor than the k-th nearest code already collected; past that radius, it
//!   switches as soon as one stage would cost half a linear pass. Uniform 64-bit codes at a
//!   million rows go linear at once; at ten million, and for clustered codes, the tables win.
//!
//! The tail (rows inserted since the last merge) is read linearly; a linear pass keeps at most
//! `cap` rows beyond what it has proven and is repeated from its bound if more are wanted.

use crate::format::{FormatError, Tid};
use crate::relation::Relation;
use crate::search::{Query, SearchStats};
use crate::substrings::layout::TOMBSTONE;
use crate::substrings::plan::{binomial, bits_at, masks, uniform_knn_distance};
use crate::substrings::runs::{for_tail_pages, Runs};
use ics_codes::hamming::{hamming, within};

/// Rows a k-NN query's first linear pass keeps beyond its proven bound before it gives up the
/// farthest (each further pass keeps four times more). Small, so the cutoff tightens fast and
/// most pages are settled by one vectorised minimum; a LIMIT beyond it costs another pass.
const FIRST_PASS_ROWS: usize = 128;
/// Stages a k-NN search runs without weighing them: up to this share of a linear pass.
const CHEAP_STAGES_SHARE: u64 = 16; // 1/16
/// The k a k-NN search plans for (the executor's LIMIT is not known to an index scan).
const PLANNED_K: u64 = 10;

/// Distances proven: every row at or below this distance has been collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proven {
    Nothing,
    UpTo(u32),
    All,
}

impl Proven {
    fn covers(self, d: u32) -> bool {
        match self {
            Proven::Nothing => false,
            Proven::UpTo(p) => d <= p,
            Proven::All => true,
        }
    }

    /// Rows farther than this are new to a source that proved it.
    fn floor(self) -> Option<u32> {
        match self {
            Proven::Nothing => None,
            Proven::UpTo(p) => Some(p),
            Proven::All => Some(u32::MAX),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Row(Tid),
    /// A distinct code (index into the arena) whose rows are looked up when returned.
    Code(u32),
    /// Table 0's record at this position (found on a codes page): its TID is read when the
    /// row is returned, and a dead row (tombstone) is skipped then.
    Position(u32),
}

/// Rows and codes collected by one source, by distance.
#[derive(Debug)]
struct Buckets {
    by_distance: Vec<Vec<Item>>,
    pending: usize,
}

impl Buckets {
    fn new(bits: usize) -> Self {
        Buckets {
            by_distance: vec![Vec::new(); bits + 1],
            pending: 0,
        }
    }

    fn push(&mut self, d: u32, item: Item) {
        self.by_distance[d as usize].push(item);
        self.pending += 1;
    }

    fn pop(&mut self, d: u32) -> Option<Item> {
        let item = self.by_distance.get_mut(d as usize)?.pop()?;
        self.pending -= 1;
        Some(item)
    }

    /// Drops everything farther than `d`.
    fn truncate_above(&mut self, d: u32) {
        for b in self.by_distance.iter_mut().skip(d as usize + 1) {
            self.pending -= b.len();
            b.clear();
        }
    }
}

/// A linear pass's state: it has proven `proven`, and the next pass keeps `cap` rows.
#[derive(Debug, Clone, Copy)]
struct Linear {
    proven: Proven,
    cap: usize,
}

#[derive(Debug, Clone, Copy)]
enum RunsState {
    /// Next stage to run, and the bound the finished ones proved.
    Stages {
        s: u32,
        j: usize,
        proven: Proven,
    },
    Linear(Linear),
}

pub struct Search {
    query: Query,
    runs: Runs,
    q_prefix: Vec<u32>,
    tail_heads: Vec<u32>,
    bits: u32,
    state: RunsState,
    tail: Linear,
    run_items: Buckets,
    tail_items: Buckets,
    arena: Vec<u8>,
    cursor: u32,
    /// Estimated pages of the stages run so far.
    stage_pages: u64,
    /// Rows returned so far.
    returned: u64,
    /// Record ranges of the stages looked up so far (for their cost, then their run).
    ranges: std::collections::HashMap<(u32, usize), Vec<(u32, u32)>>,
    /// Stages collect codes within this distance only (a k-NN query's stages would otherwise
    /// keep every far code of every slot they read): what they prove stops there, and rows
    /// beyond it come from a linear pass.
    collect_within: u32,
    resolved: Vec<Tid>,
    /// The within-bound kernel's output, reused.
    hits: Vec<(u32, u32)>,
    pub stats: SearchStats,
}

impl Search {
    pub fn new<R: Relation>(rel: &R, query: Query) -> Result<Search, FormatError> {
        let runs = Runs::read(rel)?;
        Ok(Search::over(runs, query))
    }

    pub fn over(runs: Runs, query: Query) -> Search {
        let nb = runs.code_bytes();
        assert_eq!(query.code.len(), nb, "query length checked by the caller");
        let bits = (nb * 8) as u32;
        let q_prefix = runs
            .sub
            .tables
            .iter()
            .map(|t| bits_at(&query.code, t.sub.start, t.slot_bits))
            .collect();
        let tail_heads = [runs.sub.tail, runs.sub.sealed]
            .into_iter()
            .filter(|&b| b != crate::format::INVALID_BLOCK)
            .collect();
        let bounded = query.max_distance != u32::MAX;
        let cap = if bounded { usize::MAX } else { FIRST_PASS_ROWS };
        let state = if runs.m() == 0 {
            RunsState::Linear(Linear {
                proven: Proven::All,
                cap,
            })
        } else {
            RunsState::Stages {
                s: 0,
                j: 0,
                proven: Proven::Nothing,
            }
        };
        Search {
            q_prefix,
            tail_heads,
            bits,
            state,
            tail: Linear {
                proven: Proven::Nothing,
                cap,
            },
            run_items: Buckets::new(bits as usize),
            tail_items: Buckets::new(bits as usize),
            arena: Vec::new(),
            cursor: 0,
            stage_pages: 0,
            returned: 0,
            ranges: std::collections::HashMap::new(),
            collect_within: if bounded {
                query.max_distance
            } else {
                let rows = runs
                    .sub
                    .tables
                    .first()
                    .map_or(1, |t| u64::from(t.records.max(1)));
                uniform_knn_distance(bits, rows, FIRST_PASS_ROWS as u64).max(bits / 4)
            },
            resolved: Vec::new(),
            hits: Vec::new(),
            stats: SearchStats::default(),
            query,
            runs,
        }
    }

    fn runs_proven(&self) -> Proven {
        match self.state {
            RunsState::Stages { proven, .. } => self.capped(proven),
            RunsState::Linear(l) => l.proven,
        }
    }

    /// What stages that proved `p` prove, given that they collect within `collect_within`.
    fn capped(&self, p: Proven) -> Proven {
        if self.collect_within >= self.bits {
            p
        } else {
            p.min(Proven::UpTo(self.collect_within))
        }
    }

    fn done_at(&self, p: Proven) -> bool {
        p.covers(self.query.max_distance.min(self.bits))
    }

    /// The next row in increasing distance, or `None` when the search is exhausted.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Option<(Tid, u32)> {
        loop {
            let proven = self.runs_proven().min(self.tail.proven);
            let limit = self.query.max_distance.min(self.bits);
            while proven.covers(self.cursor) && self.cursor <= limit {
                if let Some(Item::Row(t)) = self.tail_items.pop(self.cursor) {
                    self.returned += 1;
                    return Some((t, self.cursor));
                }
                match self.run_items.pop(self.cursor) {
                    Some(Item::Row(t)) => {
                        self.returned += 1;
                        return Some((t, self.cursor));
                    }
                    Some(Item::Position(at)) => {
                        let t = self
                            .runs
                            .tid_at(rel, at)
                            .unwrap_or_else(|f| f.end_scan(rel));
                        self.stats.pages_read += 1;
                        if t != TOMBSTONE {
                            self.returned += 1;
                            return Some((t, self.cursor));
                        }
                    }
                    Some(Item::Code(at)) => {
                        let nb = self.runs.code_bytes();
                        let code = self.arena[at as usize * nb..(at as usize + 1) * nb].to_vec();
                        self.resolved.clear();
                        self.stats.pages_read += self
                            .runs
                            .rows_of(rel, &code, &mut self.resolved)
                            .unwrap_or_else(|f| f.end_scan(rel));
                        for &t in &self.resolved {
                            self.run_items.push(self.cursor, Item::Row(t));
                        }
                    }
                    None => self.cursor += 1,
                }
            }
            if self.done_at(proven) || self.cursor > limit {
                return None;
            }
            // Advance whichever source holds the bound back.
            if self.tail.proven <= self.runs_proven() {
                self.tail_pass(rel);
            } else {
                self.advance_runs(rel);
            }
        }
    }

    fn tail_pass<R: Relation>(&mut self, rel: &R) {
        let nb = self.runs.code_bytes();
        let floor = self.tail.proven.floor();
        let mut pass = Pass::new(floor, self.tail.cap, self.bits, self.bits);
        for &head in &self.tail_heads.clone() {
            let q = &self.query;
            self.stats.pages_read += for_tail_pages(rel, nb, head, &mut |codes, tids| {
                pass.page(q, nb, codes, &|i| row_item(tids(i)));
            })
            .unwrap_or_else(|f| f.end_scan(rel));
        }
        self.stats.entries_checked += pass.checked;
        self.tail.proven = pass.finish(&mut self.tail_items);
        self.tail.cap = self.tail.cap.saturating_mul(4);
    }

    fn advance_runs<R: Relation>(&mut self, rel: &R) {
        match self.state {
            RunsState::Linear(l) => {
                let nb = self.runs.code_bytes();
                let rows = u64::from(self.runs.table(0).records);
                let start = uniform_knn_distance(self.bits, rows, l.cap as u64).saturating_add(1);
                let mut pass = Pass::new(l.proven.floor(), l.cap, self.bits, start);
                let t0 = self.runs.table(0).records;
                let q = &self.query;
                let read = if self.runs.codes_pages() > 0 {
                    // Codes without TIDs: rows are kept by position (see Item::Position).
                    self.runs.for_codes(rel, &mut |first, codes, _| {
                        pass.page(q, nb, codes, &|i| Some(Item::Position(first + i as u32)));
                    })
                } else {
                    // An index built before the codes pages: the records pages.
                    self.runs.for_records(rel, 0, 0, t0, &mut |_, codes, tids| {
                        let tids = tids.expect("table 0 has TIDs");
                        pass.page(q, nb, codes, &|i| row_item(tids(i)));
                    })
                };
                self.stats.pages_read += read.unwrap_or_else(|f| f.end_scan(rel));
                self.stats.entries_checked += pass.checked;
                self.stats.linear_passes += 1;
                self.state = RunsState::Linear(Linear {
                    proven: pass.finish(&mut self.run_items),
                    cap: l.cap.saturating_mul(4),
                });
            }
            RunsState::Stages { s, j, proven } => {
                let m = self.runs.m();
                let max_slot_bits = self.max_slot_bits();
                let capped = proven.covers(self.collect_within) && self.collect_within < self.bits;
                if s > max_slot_bits || capped {
                    // Every slot of every table has been read, or the stages have proven all
                    // they collect: beyond that, rows come from a linear pass.
                    self.state = if self.collect_within >= self.bits {
                        RunsState::Stages {
                            s,
                            j,
                            proven: Proven::All,
                        }
                    } else {
                        RunsState::Linear(Linear {
                            proven: Proven::UpTo(self.collect_within),
                            cap: FIRST_PASS_ROWS,
                        })
                    };
                    return;
                }
                let proven = self.capped(proven);
                if self.linear_is_cheaper(rel, s, j, proven) {
                    // Rows beyond the proven bound come from one linear pass instead (before
                    // the first stage nothing has been collected).
                    if let Some(p) = proven.floor() {
                        self.run_items.truncate_above(p);
                    }
                    let cap = if self.query.max_distance != u32::MAX {
                        usize::MAX
                    } else {
                        FIRST_PASS_ROWS
                    };
                    self.state = RunsState::Linear(Linear { proven, cap });
                    self.stats.switched_to_linear = true;
                    return self.advance_runs(rel);
                }
                self.stage_pages += self.stage_cost(rel, s, j);
                self.run_stage(rel, s, j);
                let bound = (m as u32).saturating_mul(s).saturating_add(j as u32);
                let (ns, nj) = if j + 1 == m { (s + 1, 0) } else { (s, j + 1) };
                self.state = RunsState::Stages {
                    s: ns,
                    j: nj,
                    proven: Proven::UpTo(bound),
                };
            }
        }
    }

    /// Whether the rest of the search is cheaper as a linear pass than by stages, at stage
    /// (s, j) with `proven` proven (see the module docs).
    fn linear_is_cheaper<R: Relation>(
        &mut self,
        rel: &R,
        s: u32,
        j: usize,
        proven: Proven,
    ) -> bool {
        let linear = self.linear_cost();
        if self.query.max_distance != u32::MAX {
            // A radius query knows where it stops: weigh the stages up to there, once.
            return s == 0
                && j == 0
                && self.cost_to_prove(rel, s, j, self.query.max_distance, linear) > linear;
        }
        let next = self.stage_cost(rel, s, j);
        if self.stage_pages + next <= linear / CHEAP_STAGES_SHARE {
            return false;
        }
        // Plan for ten rows, or twice what the executor has taken so far. They lie no farther
        // than where uniformly random codes would put them, nor than the k-th nearest of the
        // codes collected so far (proven or not: they exist).
        let k = PLANNED_K.max(2 * self.returned);
        let rows = u64::from(self.runs.table(0).records);
        let target = uniform_knn_distance(self.bits, rows, k).min(self.kth_collected(k));
        match proven.floor() {
            Some(p) if p >= target => 2 * next > linear,
            _ => self.cost_to_prove(rel, s, j, target, linear) > linear,
        }
    }

    /// The distance within which the codes collected so far (tail rows included) number
    /// `k`, or the code length when they are fewer.
    fn kth_collected(&self, k: u64) -> u32 {
        let mut seen = 0u64;
        for d in 0..=self.bits as usize {
            seen +=
                (self.run_items.by_distance[d].len() + self.tail_items.by_distance[d].len()) as u64;
            if seen >= k {
                return d as u32;
            }
        }
        self.bits
    }

    /// The cost of the stages from (s, j) on until the bound reaches `target` (it stops
    /// counting past `enough`).
    fn cost_to_prove<R: Relation>(
        &mut self,
        rel: &R,
        mut s: u32,
        mut j: usize,
        target: u32,
        enough: u64,
    ) -> u64 {
        let m = self.runs.m();
        let max_slot_bits = self.max_slot_bits();
        let mut cost = 0u64;
        while s <= max_slot_bits && cost <= enough {
            cost = cost.saturating_add(self.stage_cost(rel, s, j));
            if (m as u32).saturating_mul(s).saturating_add(j as u32) >= target {
                break;
            }
            (s, j) = if j + 1 == m { (s + 1, 0) } else { (s, j + 1) };
        }
        cost
    }

    /// The most slot bits of any table: stages beyond it read nothing.
    fn max_slot_bits(&self) -> u32 {
        self.runs
            .sub
            .tables
            .iter()
            .map(|t| t.slot_bits)
            .max()
            .unwrap_or(0)
    }

    /// The cost of a linear pass over table 0: its pages (codes pages where the index has
    /// them), and as much again for comparing their codes.
    fn linear_cost(&self) -> u64 {
        let pages = match self.runs.codes_pages() {
            0 => self.runs.table(0).rec_pages(self.runs.cap(0)),
            n => n,
        };
        2 * pages as u64
    }

    /// Slots past this many in one stage are not looked up to price the stage: such a
    /// stage costs more than any linear pass this index can have.
    const MAX_PRICED_SLOTS: u64 = 1 << 16;

    /// The cost of stage (s, j), in the units of [`Self::linear_cost`]: the slot pages and
    /// record pages it reads, plus its records as a share of a page's worth of comparisons.
    /// Counted from the slot directory, which the stage reads anyway.
    fn stage_cost<R: Relation>(&mut self, rel: &R, s: u32, j: usize) -> u64 {
        let t = *self.runs.table(j);
        let slots = binomial(t.slot_bits, s);
        if slots == 0 {
            return 0;
        }
        if slots > Self::MAX_PRICED_SLOTS {
            return u64::MAX / 4;
        }
        let cap = self.runs.cap(j) as u64;
        let slot_pages = slots.min(t.slot_pages() as u64);
        let ranges = self.stage_ranges(rel, s, j);
        let mut pages = 0u64;
        let mut records = 0u64;
        let mut last_page = u64::MAX;
        for &(a, b) in ranges {
            records += u64::from(b - a);
            let (first, end) = (u64::from(a) / cap, (u64::from(b) - 1) / cap);
            pages += end - first + 1 - u64::from(first == last_page);
            last_page = end;
        }
        slot_pages + pages + records / cap
    }

    /// The record ranges of table `j`'s slots at prefix distance exactly `s` (looked up once).
    fn stage_ranges<R: Relation>(&mut self, rel: &R, s: u32, j: usize) -> &[(u32, u32)] {
        if !self.ranges.contains_key(&(s, j)) {
            let t = *self.runs.table(j);
            let qp = self.q_prefix[j];
            let mut slots: Vec<u32> = masks(t.slot_bits, s).map(|mask| qp ^ mask).collect();
            slots.sort_unstable();
            self.stats.pages_read += slots.len().min(t.slot_pages());
            let ranges = self
                .runs
                .slot_ranges(rel, j, &slots)
                .unwrap_or_else(|f| f.end_scan(rel));
            self.ranges.insert((s, j), ranges);
        }
        &self.ranges[&(s, j)]
    }

    /// Collects the codes of table `j`'s slots at prefix distance exactly `s`.
    fn run_stage<R: Relation>(&mut self, rel: &R, s: u32, j: usize) {
        self.stats.stages += 1;
        let t = *self.runs.table(j);
        if s > t.slot_bits {
            return;
        }
        self.stage_ranges(rel, s, j);
        let ranges = self.ranges.remove(&(s, j)).unwrap_or_default();
        let nb = self.runs.code_bytes();
        let tables = self.runs.sub.tables.clone();
        let q_prefix = self.q_prefix.clone();
        // Whether (s, j) is the first stage that reaches `code` (see the module docs).
        let first_reached_here = |code: &[u8]| {
            tables.iter().enumerate().all(|(i, ti)| {
                if i == j {
                    return true;
                }
                let p = (bits_at(code, ti.sub.start, ti.slot_bits) ^ q_prefix[i]).count_ones();
                if i < j {
                    p > s
                } else {
                    p >= s
                }
            })
        };
        let bound = self.collect_within.min(self.query.max_distance);
        for (a, b) in ranges {
            let (query, hits, items, arena, checked) = (
                &self.query,
                &mut self.hits,
                &mut self.run_items,
                &mut self.arena,
                &mut self.stats.entries_checked,
            );
            let read = self.runs.for_records(rel, j, a, b, &mut |_, codes, tids| {
                *checked += codes.len() / nb;
                hits.clear();
                within(&query.code, codes, bound, hits);
                for &(i, d) in hits.iter() {
                    let i = i as usize;
                    let code = &codes[i * nb..(i + 1) * nb];
                    if !passes_filters(query, code) || !first_reached_here(code) {
                        continue;
                    }
                    match tids {
                        Some(tid_of) => {
                            let t = tid_of(i);
                            if t != TOMBSTONE {
                                items.push(d, Item::Row(t));
                            }
                        }
                        None => {
                            let at = (arena.len() / nb) as u32;
                            arena.extend_from_slice(code);
                            items.push(d, Item::Code(at));
                        }
                    }
                }
            });
            match read {
                Ok(pages) => self.stats.pages_read += pages,
                Err(f) => f.end_scan(rel),
            }
        }
    }
}

fn passes_filters(query: &Query, code: &[u8]) -> bool {
    query.filters.iter().all(|(c, r)| hamming(c, code) <= *r)
}

/// The item of a row read with its TID: none for a dead row's tombstone.
fn row_item(t: Tid) -> Option<Item> {
    (t != TOMBSTONE).then_some(Item::Row(t))
}

/// One linear pass over pages of codes: keeps rows beyond `floor`, at most `cap` of them
/// plus ties (dropping the farthest distances), and reports what it proved.
struct Pass {
    floor: Option<u32>,
    cap: usize,
    cutoff: u32,
    dropped: bool,
    kept: Vec<Vec<Item>>,
    count: usize,
    checked: usize,
    hits: Vec<(u32, u32)>,
}

impl Pass {
    /// A pass keeping rows beyond `floor`, at most `cap` of them (and ties), starting with
    /// nothing farther than `start` (where `cap` uniformly random codes would lie: rows beyond
    /// it are only needed when fewer lie within it, and then the pass proves `start`).
    fn new(floor: Option<u32>, cap: usize, bits: u32, start: u32) -> Pass {
        Pass {
            floor,
            cap,
            cutoff: start
                .min(bits)
                .max(floor.map_or(0, |f| f.saturating_add(1))),
            dropped: false,
            kept: vec![Vec::new(); bits as usize + 1],
            count: 0,
            checked: 0,
            hits: Vec::new(),
        }
    }

    /// One page's codes; `item(i)` is the row of code `i` (`None`: a dead row).
    fn page(
        &mut self,
        query: &Query,
        nb: usize,
        codes: &[u8],
        item: &dyn Fn(usize) -> Option<Item>,
    ) {
        let n = codes.len() / nb;
        self.checked += n;
        // Only codes within the cutoff matter (and the radius): the kernel returns those and
        // nothing else, so most pages of a k-NN pass cost one kernel call. A code beyond the
        // cutoff but within the radius is dropped, and then the pass proves only the cutoff.
        let radius = query.max_distance;
        let bound = if radius != u32::MAX && self.cutoff < radius {
            radius // to tell the dropped codes from the codes beyond the radius
        } else {
            self.cutoff.min(radius)
        };
        self.hits.clear();
        within(&query.code, codes, bound, &mut self.hits);
        if radius == u32::MAX && self.hits.len() < n {
            self.dropped = true; // codes beyond the cutoff (and so beyond the floor)
        }
        let hits = std::mem::take(&mut self.hits);
        for &(i, d) in &hits {
            if self.floor.is_some_and(|f| d <= f) {
                continue;
            }
            if d > self.cutoff {
                self.dropped = true;
                continue;
            }
            let i = i as usize;
            let Some(it) = item(i) else { continue };
            if !passes_filters(query, &codes[i * nb..(i + 1) * nb]) {
                continue;
            }
            self.kept[d as usize].push(it);
            self.count += 1;
            // Keep `cap` rows: drop the farthest distance while the rest still hold `cap`.
            while self.count - self.kept[self.cutoff as usize].len() >= self.cap {
                let far = std::mem::take(&mut self.kept[self.cutoff as usize]);
                self.count -= far.len();
                self.dropped |= !far.is_empty();
                if self.cutoff == 0 {
                    break;
                }
                self.cutoff -= 1;
            }
        }
        self.hits = hits;
    }

    fn finish(self, into: &mut Buckets) -> Proven {
        for (d, items) in self.kept.into_iter().enumerate() {
            for it in items {
                into.push(d as u32, it);
            }
        }
        if self.dropped {
            Proven::UpTo(self.cutoff)
        } else {
            Proven::All
        }
    }
}
