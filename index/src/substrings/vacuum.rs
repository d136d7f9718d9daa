//! VACUUM for substring tables: dead rows out, the tail folded into new tables, old pages
//! recycled.
//!
//! - [`bulk_delete`]: a dead row's record in table 0 gets a tombstone TID in place (positions
//!   in a table must not move: the slot pages point at them), and the metapage's tombstone
//!   count grows in the same WAL record, so no crash leaves them apart; dead rows leave tail
//!   pages.
//!   The other tables keep the code: its rows are looked up in table 0 when it is found.
//! - [`merge`]: when the tail or the tombstones have grown enough, writes a new generation of
//!   tables from the live rows (table 0 is read in order, the tail sorted and merged in),
//!   switches the metapage to it in one step and marks the old generation's pages deleted.
//!   Inserts go on meanwhile: the merge first *seals* the tail (the metapage points new inserts
//!   to a new one) and folds in only what was sealed. Scans that started before the switch
//!   keep reading the old pages, which are recycled only once no snapshot can be reading them.
//! - [`reclaim`]: marks pages no generation uses any more as deleted (what a merge cut short
//!   by an error or a crash left behind) and hands deleted pages nobody can reach to the free
//!   space map.

use crate::format::{DataOpaque, FormatError, Meta, Tid, FLAG_DELETED, INVALID_BLOCK, META_BLOCK};
use crate::page::Page;
use crate::relation::{BlockNumber, ChainWalk, PagePair, Relation};
use crate::spill::Spill;
use crate::substrings::build::{push_row, row_sorter, write_tables, RowStream, SortedRows};
use crate::substrings::layout::{
    self, capacity, check_page, Kind, PageFault, Special, SubMeta, Want, TOMBSTONE,
};
use crate::substrings::plan::{default_substrings, split};
use crate::substrings::runs::{for_tail_pages, Runs};
use crate::vacuum::VacuumStats;
use std::collections::HashSet;

/// A merge runs when the tail holds more than this share of the live rows...
const MERGE_TAIL_SHARE: u64 = 16; // 1/16
/// ...and at least this many rows, or when tombstones are more than this share of table 0.
const MERGE_MIN_TAIL_ROWS: u64 = 64;
const MERGE_TOMBSTONE_SHARE: u64 = 8; // 1/8

fn meta_of<R: Relation>(rel: &R) -> Result<(Meta, SubMeta), FormatError> {
    let page = rel.read(META_BLOCK);
    let meta = Meta::read(&page)?;
    let sub = SubMeta::read(&page).map_err(FormatError::BadMeta)?;
    Ok((meta, sub))
}

/// Removes dead rows from one tail page of `n` rows, checked (compacting it); returns
/// (removed, remaining).
fn clean_tail_page(
    page: &mut Page,
    nb: usize,
    n: usize,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> (u64, u64) {
    let cap = capacity(nb, true);
    let dead: Vec<bool> = (0..n)
        .map(|i| is_dead(layout::tid(page, nb, cap, i)))
        .collect();
    let removed = dead.iter().filter(|&&d| d).count();
    if removed == 0 {
        return (0, n as u64);
    }
    let mut kept = 0;
    for (i, &d) in dead.iter().enumerate() {
        if !d {
            let code = layout::codes(page, nb, i, i + 1).to_vec();
            let t = layout::tid(page, nb, cap, i);
            layout::set_record(page, nb, cap, kept, &code, Some(t));
            kept += 1;
        }
    }
    layout::set_count(page, kept as u32);
    (removed as u64, kept as u64)
}

/// Removes every row for which `is_dead` is true.
pub fn bulk_delete<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<VacuumStats, FormatError> {
    let runs = Runs::read(rel)?;
    let nb = runs.code_bytes();
    let mut stats = VacuumStats::default();
    let mut tombstoned = 0u64;
    if runs.m() > 0 {
        let cap = runs.cap(0);
        let t0 = *runs.table(0);
        for p in 0..t0.rec_pages(cap) {
            rel.check_interrupts();
            let block = runs.rec_block(0, p);
            let guard = rel.write(block);
            let n = (t0.records as usize - p * cap).min(cap);
            check_page(
                &guard,
                block,
                &Want::run(Kind::Records, 0, runs.sub.generation, n),
            )?;
            let dead: Vec<usize> = (0..n)
                .filter(|&i| {
                    let t = layout::tid(&guard, nb, cap, i);
                    t != TOMBSTONE && is_dead(t)
                })
                .collect();
            if !dead.is_empty() {
                // The page's tombstones and the metapage's count, in one record (lock order:
                // the page, then the metapage, as inserts take them).
                let mut pair = rel.join(guard, META_BLOCK);
                let (page, mp) = pair.pages();
                let meta = Meta::read(mp)?;
                let mut sub = SubMeta::read(mp).map_err(FormatError::BadMeta)?;
                for &i in &dead {
                    let at = cap * nb + i * Tid::SIZE;
                    page.contents_mut()[at..at + Tid::SIZE].copy_from_slice(&TOMBSTONE.to_bytes());
                }
                sub.tombstones += dead.len() as u64;
                sub.write(&meta, mp);
                tombstoned += dead.len() as u64;
            }
        }
    }
    let mut tail_rows = 0;
    for head in [runs.sub.tail, runs.sub.sealed] {
        let mut block = head;
        let mut walk = ChainWalk::new();
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            walk.step(rel, block)?;
            let mut guard = rel.write(block);
            let s = check_page(&guard, block, &Want::tail(nb))?;
            let (removed, kept) = {
                // Decide without dirtying the page when nothing on it died.
                let cap = capacity(nb, true);
                let n = s.count as usize;
                let any = (0..n).any(|i| is_dead(layout::tid(&guard, nb, cap, i)));
                if any {
                    clean_tail_page(&mut guard, nb, n, is_dead)
                } else {
                    (0, u64::from(s.count))
                }
            };
            stats.tids_removed += removed;
            tail_rows += kept;
            block = s.prev;
        }
    }
    stats.tids_removed += tombstoned;
    let sub = if tombstoned > 0 {
        meta_of(rel)?.1
    } else {
        runs.sub.clone()
    };
    stats.tids_remaining = sub.runs_rows - sub.tombstones + tail_rows;
    stats.entries_remaining = stats.tids_remaining;
    stats.pages_in_lists = runs.pages.len() as u64;
    Ok(stats)
}

/// Rows in the tail chain starting at `head`.
fn chain_rows<R: Relation>(rel: &R, nb: usize, head: BlockNumber) -> Result<u64, FormatError> {
    let mut rows = 0u64;
    for_tail_pages(rel, nb, head, &mut |codes, _| {
        rows += (codes.len() / nb) as u64
    })?;
    Ok(rows)
}

/// Blocks of the tail chain starting at `head` (of codes of `nb` bytes), each checked to be a
/// tail page before its link is followed.
fn chain_blocks<R: Relation>(
    rel: &R,
    nb: usize,
    head: BlockNumber,
) -> Result<Vec<BlockNumber>, FormatError> {
    let mut out = Vec::new();
    let mut block = head;
    let mut walk = ChainWalk::new();
    while block != INVALID_BLOCK {
        walk.step(rel, block)?;
        out.push(block);
        block = check_page(&rel.read(block), block, &Want::tail(nb))?.prev;
    }
    Ok(out)
}

/// Marks `blocks` as having left the index (unless they already have).
fn mark_deleted<R: Relation>(rel: &R, blocks: &[BlockNumber]) {
    for &b in blocks {
        rel.check_interrupts();
        let mut g = rel.write(b);
        if DataOpaque::is_any_data_page(&g) && DataOpaque::read(&g).flags & FLAG_DELETED == 0 {
            let xid = rel.next_xid();
            DataOpaque::mark_deleted(&mut g, xid);
        }
    }
}

/// Table 0's live rows in order, one page at a time (copied, so no lock is held between rows).
struct Table0Rows<'a, R: Relation> {
    rel: &'a R,
    runs: &'a Runs,
    page: usize,
    codes: Vec<u8>,
    tids: Vec<Tid>,
    at: usize,
    /// A page that could not be read: the rows end there, and the merge must not switch.
    fault: Option<PageFault>,
}

impl<'a, R: Relation> Table0Rows<'a, R> {
    fn new(rel: &'a R, runs: &'a Runs) -> Self {
        Table0Rows {
            rel,
            runs,
            page: 0,
            codes: Vec::new(),
            tids: Vec::new(),
            at: 0,
            fault: None,
        }
    }

    fn peek(&mut self) -> Option<(&[u8], Tid)> {
        let nb = self.runs.code_bytes();
        while self.at >= self.tids.len() {
            if self.runs.m() == 0 {
                return None;
            }
            let cap = self.runs.cap(0);
            let t0 = self.runs.table(0);
            if self.page >= t0.rec_pages(cap) || self.fault.is_some() {
                return None;
            }
            let from = (self.page * cap) as u32;
            let to = (((self.page + 1) * cap) as u32).min(t0.records);
            self.codes.clear();
            self.tids.clear();
            self.at = 0;
            let (codes, tids) = (&mut self.codes, &mut self.tids);
            let read = self
                .runs
                .for_records(self.rel, 0, from, to, &mut |_, c, t| {
                    let t = t.expect("table 0 has TIDs");
                    for (i, code) in c.chunks_exact(nb).enumerate() {
                        let tid = t(i);
                        if tid != TOMBSTONE {
                            codes.extend_from_slice(code);
                            tids.push(tid);
                        }
                    }
                });
            if let Err(f) = read {
                self.fault = Some(f);
                return None;
            }
            self.page += 1;
        }
        Some((
            &self.codes[self.at * nb..(self.at + 1) * nb],
            self.tids[self.at],
        ))
    }
}

/// Two row streams in code order, merged.
struct MergedRows<'a, R: Relation, F> {
    a: Table0Rows<'a, R>,
    b: SortedRows<F>,
    b_head: Option<(Vec<u8>, Tid)>,
    b_started: bool,
    out: Vec<u8>,
}

impl<R: Relation, F: crate::spill::SpillFile> RowStream for MergedRows<'_, R, F> {
    fn next_row(&mut self) -> Option<(&[u8], Tid)> {
        if !self.b_started {
            self.b_started = true;
            self.b_head = self.b.next_row().map(|(c, t)| (c.to_vec(), t));
        }
        let take_a = match (self.a.peek(), &self.b_head) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((ac, _)), Some((bc, _))) => ac <= bc.as_slice(),
        };
        let tid = if take_a {
            let (c, t) = self.a.peek().expect("peeked");
            self.out.clear();
            self.out.extend_from_slice(c);
            self.a.at += 1;
            t
        } else {
            let (c, t) = self.b_head.take().expect("peeked");
            self.out = c;
            self.b_head = self.b.next_row().map(|(c, t)| (c.to_vec(), t));
            t
        };
        Some((&self.out, tid))
    }
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub rows: u64,
    pub tail_rows: u64,
    pub tombstones_dropped: u64,
    pub pages_written: u64,
    pub pages_retired: u64,
    pub substrings: usize,
}

/// Folds the tail into a new generation of tables when it (or the tombstones) has grown
/// enough, or always with `force`. `substrings` overrides the number of substrings (0: the
/// default for the row count). Returns `None` when no merge was needed.
#[allow(clippy::too_many_arguments)]
pub fn merge<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    substrings: u32,
    force: bool,
    check: &mut dyn FnMut(),
) -> Result<Option<MergeStats>, FormatError> {
    reclaim(rel)?;
    let (meta, sub) = meta_of(rel)?;
    let nb = meta.code_bytes as usize;
    if nb == 0 {
        return Ok(None);
    }
    let live = sub.runs_rows - sub.tombstones;
    let tail_rows = chain_rows(rel, nb, sub.tail)? + chain_rows(rel, nb, sub.sealed)?;
    let needed = sub.sealed != INVALID_BLOCK
        || (tail_rows >= MERGE_MIN_TAIL_ROWS && tail_rows * MERGE_TAIL_SHARE > live)
        || (sub.tombstones > 0 && sub.tombstones * MERGE_TOMBSTONE_SHARE > sub.runs_rows)
        || (force && (tail_rows > 0 || sub.tombstones > 0 || sub.tables.is_empty() && live > 0));
    if !needed {
        return Ok(None);
    }
    // Seal: new inserts start a new tail; this merge folds in what is sealed. (A sealed
    // tail left by a merge cut short is folded in first; the current tail waits.)
    {
        let mut mp = rel.write(META_BLOCK);
        let meta = Meta::read(&mp)?;
        let mut s = SubMeta::read(&mp).map_err(FormatError::BadMeta)?;
        if s.sealed == INVALID_BLOCK && s.tail != INVALID_BLOCK {
            s.sealed = s.tail;
            s.tail = INVALID_BLOCK;
            s.write(&meta, &mut mp);
        }
    }
    let runs = Runs::read(rel)?;
    let sealed_head = runs.sub.sealed;
    let mut sorter = row_sorter(spill, nb, budget / 2);
    let mut scratch = Vec::new();
    for_tail_pages(rel, nb, sealed_head, &mut |codes, tids| {
        for (i, code) in codes.chunks_exact(nb).enumerate() {
            push_row(&mut sorter, code, tids(i), &mut scratch);
        }
    })?;
    let sealed_rows = sorter.len();
    let rows = runs.sub.runs_rows - runs.sub.tombstones + sealed_rows;
    let bits = (nb * 8) as u32;
    let m = if substrings == 0 {
        default_substrings(bits, rows)
    } else {
        substrings.min(bits)
    };
    let generation = runs.sub.generation.wrapping_add(1);
    let mut stream = MergedRows {
        a: Table0Rows::new(rel, &runs),
        b: SortedRows {
            sorted: sorter.finish(),
            code_bytes: nb,
        },
        b_head: None,
        b_started: false,
        out: Vec::new(),
    };
    let written = write_tables(
        rel,
        spill,
        budget / 2,
        nb,
        &split(bits, m),
        rows,
        generation,
        &mut stream,
        check,
    );
    // Tables written from rows that stopped at an unreadable page are never switched to (the
    // next reclaim marks their pages deleted: no generation uses them).
    if let Some(f) = stream.a.fault.take() {
        return Err(f.into());
    }
    // Switch: one metapage write makes the new generation the index.
    {
        let mut mp = rel.write(META_BLOCK);
        let meta = Meta::read(&mp)?;
        let mut s = SubMeta::read(&mp).map_err(FormatError::BadMeta)?;
        s.generation = generation;
        s.runs_rows = written.rows;
        s.tombstones = 0;
        s.tables = written.tables.clone();
        s.map_blocks = written.map_blocks.clone();
        s.sealed = INVALID_BLOCK;
        s.retired = sealed_head;
        // The new generation has codes pages: an index that already held NULL codes is now
        // of the current format (one that did not keeps its version: it still lacks them).
        let version = if meta.version >= crate::format::NULLS_VERSION {
            crate::format::VERSION
        } else {
            meta.version
        };
        let meta = Meta {
            build_rows: written.rows,
            version,
            ..meta
        };
        s.write(&meta, &mut mp);
    }
    // The old generation and the sealed tail leave the index.
    let mut old: Vec<BlockNumber> = runs.pages.to_vec();
    old.extend_from_slice(&runs.sub.map_blocks);
    let retired_chain = chain_blocks(rel, nb, sealed_head)?;
    mark_deleted(rel, &old);
    mark_deleted(rel, &retired_chain);
    clear_retired(rel)?;
    Ok(Some(MergeStats {
        rows: written.rows,
        tail_rows: sealed_rows,
        tombstones_dropped: runs.sub.tombstones,
        pages_written: (written.pages.len() + written.map_blocks.len()) as u64,
        pages_retired: (old.len() + retired_chain.len()) as u64,
        substrings: m as usize,
    }))
}

fn clear_retired<R: Relation>(rel: &R) -> Result<(), FormatError> {
    let mut mp = rel.write(META_BLOCK);
    let meta = Meta::read(&mp)?;
    let mut s = SubMeta::read(&mp).map_err(FormatError::BadMeta)?;
    if s.retired != INVALID_BLOCK {
        s.retired = INVALID_BLOCK;
        s.write(&meta, &mut mp);
    }
    Ok(())
}

/// Finishes what merges left: pages of other generations of tables and a retired tail chain
/// are marked deleted; so are orphaned tail pages (written by an insert that crashed or failed
/// before linking them); deleted pages no snapshot can reach go to the free space map.
/// Returns the pages handed to the free space map.
pub fn reclaim<R: Relation>(rel: &R) -> Result<u64, FormatError> {
    let (meta, sub) = meta_of(rel)?;
    let nb = meta.code_bytes as usize;
    if sub.retired != INVALID_BLOCK {
        mark_deleted(rel, &chain_blocks(rel, nb, sub.retired)?);
        clear_retired(rel)?;
    }
    // Run pages are only ever written by merges and builds, never concurrently with this
    // (VACUUM holds the index against other VACUUMs), so a run page of another generation is
    // one nobody will link again. Tail pages are left to the chains (inserts make them).
    let current: HashSet<BlockNumber> = if sub.tables.is_empty() {
        HashSet::new()
    } else {
        let runs = Runs::read(rel)?;
        runs.pages
            .iter()
            .chain(&runs.sub.map_blocks)
            .copied()
            .collect()
    };
    let linked = linked_tail_pages(rel, nb)?;
    let mut orphans = Vec::new();
    let mut recycled = 0;
    for block in 1..rel.nblocks() {
        rel.check_interrupts();
        let page = rel.read(block);
        if page.is_new() {
            drop(page);
            rel.record_free_page(block);
            recycled += 1;
            continue;
        }
        let Some(s) = Special::read(&page) else {
            continue;
        };
        if s.is_deleted() {
            if rel.xid_is_old(s.deleted_xid) {
                drop(page);
                rel.record_free_page(block);
                recycled += 1;
            }
        } else if s.kind != Kind::Tail {
            if !current.contains(&block) {
                drop(page);
                mark_deleted(rel, &[block]);
            }
        } else if !linked.contains(&block) && s.birth().is_some_and(|b| rel.xid_is_old(b)) {
            orphans.push(block);
        }
    }
    // An unlinked tail page born before every running transaction was written by an insert
    // that ended, and an insert links its pages before it ends unless it crashed or failed.
    // The chains are read again because such an insert may have linked its pages after the
    // first reading (only inserts change them while VACUUM runs, and only by adding pages).
    if !orphans.is_empty() {
        let linked = linked_tail_pages(rel, nb)?;
        orphans.retain(|b| !linked.contains(b));
        mark_deleted(rel, &orphans);
    }
    Ok(recycled)
}

/// Every page of the tail chains the metapage links (current, sealed, retired).
fn linked_tail_pages<R: Relation>(rel: &R, nb: usize) -> Result<HashSet<BlockNumber>, FormatError> {
    let (_, sub) = meta_of(rel)?;
    let mut linked = HashSet::new();
    for head in [sub.tail, sub.sealed, sub.retired] {
        linked.extend(chain_blocks(rel, nb, head)?);
    }
    Ok(linked)
}
