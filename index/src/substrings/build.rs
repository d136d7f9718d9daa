//! Writing one generation of substring tables from rows in code order (CREATE INDEX sorts
//! the table's rows; VACUUM's merge reads them from the current tables and the tail).
//!
//! Table 0 takes every row as it comes (the stream is already in its order) and its slot
//! starts are counted on the way. Each distinct code also goes to one external sort per
//! further table, keyed by (first 32 bits of that table's substring, code); those sorts are
//! then written the same way. Memory stays within the budget whatever the row count: one page
//! being filled, one slot array per table (about one u32 per half page) and the sorts' budget.

use crate::format::{Meta, Tid};
use crate::page::Page;
use crate::relation::{BlockNumber, Relation};
use crate::sort::Sorter;
use crate::spill::Spill;
use crate::substrings::layout::{self, capacity, init_page, Kind, SubMeta, Table, U32_CAPACITY};
use crate::substrings::plan::{default_substrings, slot_bits, slot_of, sort_key, split, Substring};

/// Rows in code order (ties in any order).
pub trait RowStream {
    fn next_row(&mut self) -> Option<(&[u8], Tid)>;
}

/// Rows from a sorted vector (tests, small inputs).
pub struct VecRows<'a> {
    rows: &'a [(Vec<u8>, Tid)],
    at: usize,
}

impl<'a> VecRows<'a> {
    /// `rows` must be sorted by code.
    pub fn new(rows: &'a [(Vec<u8>, Tid)]) -> Self {
        debug_assert!(rows.windows(2).all(|w| w[0].0 <= w[1].0));
        VecRows { rows, at: 0 }
    }
}

impl RowStream for VecRows<'_> {
    fn next_row(&mut self) -> Option<(&[u8], Tid)> {
        let r = self.rows.get(self.at)?;
        self.at += 1;
        Some((&r.0, r.1))
    }
}

/// Rows of an external sort of `code || tid` records.
pub struct SortedRows<F> {
    pub sorted: crate::sort::Sorted<F>,
    pub code_bytes: usize,
}

impl<F: crate::spill::SpillFile> RowStream for SortedRows<F> {
    fn next_row(&mut self) -> Option<(&[u8], Tid)> {
        let nb = self.code_bytes;
        let r = self.sorted.next_record()?;
        Some((&r[..nb], Tid::from_bytes(&r[nb..])))
    }
}

/// A sorter for rows (`code || tid` records, in code order).
pub fn row_sorter<S: Spill>(spill: &S, code_bytes: usize, budget: usize) -> Sorter<'_, S> {
    Sorter::new(spill, code_bytes + Tid::SIZE, budget)
}

/// Appends `code || tid` to a row sorter.
pub fn push_row<S: Spill>(
    sorter: &mut Sorter<'_, S>,
    code: &[u8],
    tid: Tid,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    scratch.extend_from_slice(code);
    scratch.extend_from_slice(&tid.to_bytes());
    sorter.push(scratch);
}

/// What a written generation consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub tables: Vec<Table>,
    /// The page list (run pages in order).
    pub pages: Vec<BlockNumber>,
    /// The map pages listing them.
    pub map_blocks: Vec<BlockNumber>,
    pub rows: u64,
    pub distinct: u64,
}

/// Writes consecutive pages of one kind; remembers their blocks.
struct PageWriter<'r, R: Relation> {
    rel: &'r R,
    kind: Kind,
    table: u8,
    generation: u32,
    page: Box<Page>,
    count: u32,
    blocks: Vec<BlockNumber>,
}

impl<'r, R: Relation> PageWriter<'r, R> {
    fn new(rel: &'r R, kind: Kind, table: u8, generation: u32) -> Self {
        let mut page = Page::zeroed();
        init_page(
            &mut page,
            kind,
            table,
            generation,
            crate::format::INVALID_BLOCK,
        );
        PageWriter {
            rel,
            kind,
            table,
            generation,
            page,
            count: 0,
            blocks: Vec::new(),
        }
    }

    /// Writes the page being filled (if it holds anything) and starts a new one.
    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        layout::set_count(&mut self.page, self.count);
        if self.kind == Kind::Codes {
            layout::set_codes_ident(&mut self.page);
        }
        let (block, mut w) = self.rel.new_page();
        w.0.copy_from_slice(&self.page.0);
        drop(w);
        self.blocks.push(block);
        init_page(
            &mut self.page,
            self.kind,
            self.table,
            self.generation,
            crate::format::INVALID_BLOCK,
        );
        self.count = 0;
    }

    fn finish(mut self) -> Vec<BlockNumber> {
        self.flush();
        self.blocks
    }
}

/// Slot starts of a table, counted while its records stream by in slot order.
struct SlotCounter {
    starts: Vec<u32>,
    next: usize,
}

impl SlotCounter {
    fn new(slot_bits: u32) -> Self {
        SlotCounter {
            starts: vec![0; (1usize << slot_bits) + 1],
            next: 0,
        }
    }

    /// Record `position` is in `slot` (slots never decrease).
    fn record(&mut self, slot: u32, position: u32) {
        while self.next <= slot as usize {
            self.starts[self.next] = position;
            self.next += 1;
        }
    }

    fn finish(mut self, total: u32) -> Vec<u32> {
        let n = self.starts.len();
        self.record(n as u32 - 1, total);
        self.starts
    }
}

/// Writes `u32` values (slot starts, or the page list's block numbers) to pages of `kind`.
fn write_u32s<R: Relation>(
    rel: &R,
    kind: Kind,
    table: u8,
    generation: u32,
    values: &[u32],
) -> Vec<BlockNumber> {
    let mut w = PageWriter::new(rel, kind, table, generation);
    for &v in values {
        if w.count as usize == U32_CAPACITY {
            w.flush();
        }
        layout::set_u32_at(&mut w.page, w.count as usize, v);
        w.count += 1;
    }
    w.finish()
}

/// Writes the tables of one generation: `subs` substrings over `code_bytes`-byte codes, from
/// `rows` (in code order; `expected_rows` sizes table 0's slots), sorting with at most
/// `budget` bytes of memory. `check` runs every few thousand rows (cancel requests).
#[allow(clippy::too_many_arguments)]
pub fn write_tables<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    code_bytes: usize,
    subs: &[Substring],
    expected_rows: u64,
    generation: u32,
    rows: &mut dyn RowStream,
    check: &mut dyn FnMut(),
) -> Written {
    let nb = code_bytes;
    let m = subs.len();
    assert!(m >= 1);
    // Table 0: every row, in the stream's order.
    let cap0 = capacity(nb, true);
    let bits0 = slot_bits(expected_rows, cap0, subs[0].bits);
    let mut slots0 = SlotCounter::new(bits0);
    let mut w0 = PageWriter::new(rel, Kind::Records, 0, generation);
    // Table 0's codes again, on their own pages, for the linear pass (layout module docs).
    let cap_codes = layout::codes_capacity(nb);
    let codes_pages = !tests::built_as_format_3();
    let mut wc = PageWriter::new(rel, Kind::Codes, 0, generation);
    let per_sort = budget / m.max(2);
    let mut sorters: Vec<Sorter<'_, S>> = (1..m)
        .map(|_| Sorter::new(spill, 4 + nb, per_sort))
        .collect();
    let mut key = Vec::with_capacity(4 + nb);
    let mut last: Option<Vec<u8>> = None;
    let mut total: u32 = 0;
    let mut distinct: u64 = 0;
    while let Some((code, tid)) = rows.next_row() {
        if total.is_multiple_of(4096) {
            check();
        }
        debug_assert!(
            last.as_deref().is_none_or(|l| l <= code),
            "rows in code order"
        );
        if w0.count as usize == cap0 {
            w0.flush();
        }
        layout::set_record(&mut w0.page, nb, cap0, w0.count as usize, code, Some(tid));
        w0.count += 1;
        if codes_pages {
            if wc.count as usize == cap_codes {
                wc.flush();
            }
            layout::set_codes_page(&mut wc.page, nb, wc.count as usize, code);
            wc.count += 1;
        }
        slots0.record(slot_of(code, subs[0], bits0), total);
        total = total
            .checked_add(1)
            .expect("at most 2^32 - 1 rows in one index");
        if last.as_deref() != Some(code) {
            distinct += 1;
            for (s, sorter) in sorters.iter_mut().enumerate() {
                key.clear();
                key.extend_from_slice(&sort_key(code, subs[s + 1]).to_be_bytes());
                key.extend_from_slice(code);
                sorter.push(&key);
            }
            match &mut last {
                Some(l) => l.copy_from_slice(code),
                None => last = Some(code.to_vec()),
            }
        }
    }
    let mut pages = w0.finish();
    let mut tables = vec![Table {
        sub: subs[0],
        slot_bits: bits0,
        records: total,
        rec_first: 0,
        slot_first: pages.len() as u32,
    }];
    pages.extend(write_u32s(
        rel,
        Kind::Slots,
        0,
        generation,
        &slots0.finish(total),
    ));

    // Tables 1..m: each distinct code once, in (substring, code) order.
    let capj = capacity(nb, false);
    for (s, sorter) in sorters.into_iter().enumerate() {
        let j = s + 1;
        let sub = subs[j];
        let bits = slot_bits(distinct, capj, sub.bits);
        let mut counter = SlotCounter::new(bits);
        let mut w = PageWriter::new(rel, Kind::Records, j as u8, generation);
        let mut sorted = sorter.finish();
        let mut n: u32 = 0;
        while let Some(rec) = sorted.next_record() {
            if n.is_multiple_of(4096) {
                check();
            }
            let code = &rec[4..];
            if w.count as usize == capj {
                w.flush();
            }
            layout::set_record(&mut w.page, nb, capj, w.count as usize, code, None);
            w.count += 1;
            counter.record(slot_of(code, sub, bits), n);
            n += 1;
        }
        let rec_first = pages.len() as u32;
        pages.extend(w.finish());
        tables.push(Table {
            sub,
            slot_bits: bits,
            records: n,
            rec_first,
            slot_first: pages.len() as u32,
        });
        pages.extend(write_u32s(
            rel,
            Kind::Slots,
            j as u8,
            generation,
            &counter.finish(n),
        ));
    }
    pages.extend(wc.finish());
    let map_blocks = write_u32s(rel, Kind::Map, 0, generation, &pages);
    Written {
        tables,
        pages,
        map_blocks,
        rows: u64::from(total),
        distinct,
    }
}

/// Starts a build into an empty relation: the metapage at block 0 (rewritten at the end).
fn start_build<R: Relation>(rel: &R, code_bytes: usize) {
    let mut p = crate::format::new_metapage(rel);
    SubMeta::empty().write(&Meta::new_substrings(code_bytes, 0), &mut p);
}

/// CREATE INDEX: writes the tables of `rows` (in code order; `expected_rows` of them) as
/// generation 1. `substrings` 0 chooses the number of substrings from the row count.
#[allow(clippy::too_many_arguments)]
pub fn build<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    code_bytes: usize,
    substrings: u32,
    expected_rows: u64,
    rows: &mut dyn RowStream,
    check: &mut dyn FnMut(),
) -> Written {
    start_build(rel, code_bytes);
    let bits = (code_bytes * 8) as u32;
    let m = if substrings == 0 {
        default_substrings(bits, expected_rows)
    } else {
        substrings.min(bits)
    };
    let written = write_tables(
        rel,
        spill,
        budget,
        code_bytes,
        &split(bits, m),
        expected_rows,
        1,
        rows,
        check,
    );
    let sub = SubMeta {
        generation: 1,
        runs_rows: written.rows,
        tables: written.tables.clone(),
        map_blocks: written.map_blocks.clone(),
        ..SubMeta::empty()
    };
    sub.write(
        &Meta::new_substrings(code_bytes, written.rows),
        &mut rel.write(crate::format::META_BLOCK),
    );
    written
}

/// An index with no rows yet (CREATE INDEX on an empty table, the init fork of an unlogged
/// index): no tables, an empty tail. Inserts go to the
/// tail; the first VACUUM with enough of them writes the tables.
pub fn build_empty<R: Relation>(rel: &R, code_bytes: usize) {
    start_build(rel, code_bytes);
}

/// Builds as format 3 did (no codes pages), for the tests of indexes built before them.
#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        static FORMAT_3: Cell<bool> = const { Cell::new(false) };
    }

    /// Builds and merges on this thread leave out the codes pages while `on` holds.
    pub(crate) fn build_as_format_3(on: bool) {
        FORMAT_3.with(|f| f.set(on));
    }

    pub(super) fn built_as_format_3() -> bool {
        FORMAT_3.with(Cell::get)
    }
}

#[cfg(not(test))]
mod tests {
    pub(super) fn built_as_format_3() -> bool {
        false
    }
}
