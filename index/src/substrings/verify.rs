//! Structural verification of substring tables (what `mih_verify` reports): the page list,
//! each page's kind, table and generation; slot starts that bound each slot's records;
//! table 0 in code order; every further table holding exactly the distinct codes of table 0,
//! in (substring, code) order, which is the invariant search depends on; the tail chains.

use crate::format::{FormatError, Tid, INVALID_BLOCK};
use crate::relation::Relation;
use crate::sort::Sorter;
use crate::spill::Spill;
use crate::substrings::layout::{self, check_page, Kind, Special, Want, TOMBSTONE};
use crate::substrings::plan::{slot_of, sort_key};
use crate::substrings::runs::Runs;
use crate::verify::Report;
use std::collections::HashSet;

pub fn verify<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    collect: bool,
) -> Result<Report, FormatError> {
    let runs = Runs::read(rel)?;
    let nb = runs.code_bytes();
    let mut r = Report {
        code_bytes: nb,
        strategy: crate::format::Strategy::Substrings,
        substrings: runs.m(),
        generation: runs.sub.generation,
        tombstones: runs.sub.tombstones,
        ..Default::default()
    };
    let nblocks = rel.nblocks();
    let mut seen_pages = HashSet::new();
    for (i, &b) in runs.pages.iter().chain(&runs.sub.map_blocks).enumerate() {
        if b == crate::format::META_BLOCK || b >= nblocks || !seen_pages.insert(b) {
            r.problems.push(format!(
                "run page {i}: block {b} is out of range or listed twice"
            ));
        }
    }
    if !r.problems.is_empty() {
        return Ok(r);
    }
    // Table 0's distinct codes, in order, to compare the other tables with.
    let mut distinct0: Vec<u8> = Vec::new();
    for j in 0..runs.m() {
        let t = *runs.table(j);
        let cap = runs.cap(j);
        // Page kinds and counts.
        let mut pages_ok = true;
        for p in 0..t.rec_pages(cap) {
            let block = runs.rec_block(j, p);
            let page = rel.read(block);
            let want = (t.records as usize - p * cap).min(cap);
            let problem = match check_page(
                &page,
                block,
                &Want::run(Kind::Records, j, runs.sub.generation, want),
            ) {
                Ok(s) if s.is_deleted() => Some("it is marked deleted".to_string()),
                Ok(_) => None,
                Err(f) => Some(FormatError::from(f).to_string()),
            };
            if let Some(why) = problem {
                r.problems
                    .push(format!("table {j} records page {p}: {why}"));
                pages_ok = false;
            }
        }
        r.data_pages += (t.rec_pages(cap) + t.slot_pages()) as u64;
        // Slot pages, then slot starts: non-decreasing, from 0 to the record count.
        for q in 0..t.slot_pages() {
            let (block, _) = runs.slot_location(j, q * layout::U32_CAPACITY);
            let count = (t.slots() + 1 - q * layout::U32_CAPACITY).min(layout::U32_CAPACITY);
            let want = Want::run(Kind::Slots, j, runs.sub.generation, count);
            if let Err(f) = check_page(&rel.read(block), block, &want) {
                r.problems.push(format!(
                    "table {j} slots page {q}: {}",
                    FormatError::from(f)
                ));
                pages_ok = false;
            }
        }
        if !pages_ok {
            continue;
        }
        let mut starts = Vec::with_capacity(t.slots() + 1);
        for e in 0..=t.slots() {
            let (block, i) = runs.slot_location(j, e);
            starts.push(layout::u32_at(&rel.read(block), i));
        }
        if starts[0] != 0
            || *starts.last().unwrap() != t.records
            || starts.windows(2).any(|w| w[0] > w[1])
        {
            r.problems.push(format!(
                "table {j}: slot starts are not a partition of its {} records",
                t.records
            ));
            continue;
        }
        // Records: in order, each in its slot.
        let mut prev: Option<(u32, Vec<u8>)> = None;
        let mut slot = 0usize;
        let mut bad_order = 0u64;
        let mut bad_slot = 0u64;
        let mut sorter = Sorter::new(spill, nb, budget);
        let read = runs.for_records(rel, j, 0, t.records, &mut |first, codes, tids| {
            for (i, code) in codes.chunks_exact(nb).enumerate() {
                let pos = first + i as u32;
                while starts[slot + 1] <= pos {
                    slot += 1;
                }
                if slot_of(code, t.sub, t.slot_bits) as usize != slot {
                    bad_slot += 1;
                }
                let key = if j == 0 { 0 } else { sort_key(code, t.sub) };
                if let Some((pk, pc)) = &prev {
                    let ordered = if j == 0 {
                        pc.as_slice() <= code
                    } else {
                        (*pk, pc.as_slice()) < (key, code)
                    };
                    if !ordered {
                        bad_order += 1;
                    }
                }
                match &mut prev {
                    Some((pk, pc)) if pc.len() == nb => {
                        *pk = key;
                        pc.copy_from_slice(code);
                    }
                    _ => prev = Some((key, code.to_vec())),
                }
                if j == 0 {
                    if distinct0.len() < nb || &distinct0[distinct0.len() - nb..] != code {
                        distinct0.extend_from_slice(code);
                    }
                    let tid = tids.expect("table 0 has TIDs")(i);
                    r.entries += 1;
                    if tid != TOMBSTONE {
                        r.tids += 1;
                        if tid.offset == 0 {
                            r.problems
                                .push(format!("table 0 record {pos}: invalid TID {tid:?}"));
                        }
                        if collect {
                            r.contents.push((tid, code.to_vec()));
                        }
                    }
                } else {
                    sorter.push(code);
                }
            }
        });
        if let Err(f) = read {
            r.problems
                .push(format!("table {j}: {}", FormatError::from(f)));
            continue;
        }
        if bad_order > 0 {
            r.problems
                .push(format!("table {j}: {bad_order} records out of order"));
        }
        if bad_slot > 0 {
            r.problems
                .push(format!("table {j}: {bad_slot} records outside their slot"));
        }
        if j > 0 {
            // The same distinct codes as table 0.
            let mut sorted = sorter.finish();
            let mut k = 0usize;
            let mut mismatch = false;
            while let Some(code) = sorted.next_record() {
                if k * nb >= distinct0.len() || &distinct0[k * nb..(k + 1) * nb] != code {
                    mismatch = true;
                    break;
                }
                k += 1;
            }
            if mismatch || k * nb != distinct0.len() {
                r.problems.push(format!(
                    "table {j} does not hold exactly the {} distinct codes of table 0",
                    distinct0.len() / nb.max(1)
                ));
            }
        }
    }
    // Table 0's codes pages (an index built before them has none): the codes of table 0's
    // records, in the same order.
    if runs.codes_pages() > 0 {
        r.data_pages += runs.codes_pages() as u64;
        let cap = layout::codes_capacity(nb);
        let mut differ = 0u64;
        let mut fault = None;
        let read = runs.for_codes(rel, &mut |first, codes, page| {
            if Special::read(page).is_some_and(|s| s.is_deleted()) {
                let p = first as usize / cap;
                r.problems
                    .push(format!("table 0 codes page {p}: it is marked deleted"));
            }
            let to = first + (codes.len() / nb.max(1)) as u32;
            let mut at = 0;
            let read = runs.for_records(rel, 0, first, to, &mut |_, records, _| {
                let n = records.len();
                differ += records
                    .chunks_exact(nb)
                    .zip(codes[at..at + n].chunks_exact(nb))
                    .filter(|(a, b)| a != b)
                    .count() as u64;
                at += n;
            });
            if let Err(f) = read {
                fault.get_or_insert(f);
            }
        });
        if let Some(f) = read.err().or(fault) {
            r.problems
                .push(format!("table 0 codes pages: {}", FormatError::from(f)));
        } else if differ > 0 {
            r.problems.push(format!(
                "table 0 codes pages: {differ} codes differ from table 0's records"
            ));
        }
    }
    let tombstones = r.entries - r.tids;
    if runs.m() > 0
        && (u64::from(runs.table(0).records) != runs.sub.runs_rows
            || tombstones != runs.sub.tombstones)
    {
        r.problems.push(format!(
            "the metapage counts {} rows and {} tombstones; table 0 has {} and {tombstones}",
            runs.sub.runs_rows,
            runs.sub.tombstones,
            runs.table(0).records
        ));
    }
    // Tail chains.
    let tail = Want::tail(nb);
    for (name, head) in [("tail", runs.sub.tail), ("sealed tail", runs.sub.sealed)] {
        let mut block = head;
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            if block == 0 || block >= nblocks || !seen_pages.insert(block) {
                r.problems.push(format!(
                    "{name}: block {block} out of range or reached twice"
                ));
                break;
            }
            let page = rel.read(block);
            let s = match check_page(&page, block, &tail) {
                Ok(s) if !s.is_deleted() => s,
                Ok(_) => {
                    r.problems
                        .push(format!("{name}: block {block} is not a live tail page"));
                    break;
                }
                Err(f) => {
                    r.problems.push(format!("{name}: {}", FormatError::from(f)));
                    break;
                }
            };
            r.data_pages += 1;
            let cap = layout::capacity(nb, true);
            for i in 0..s.count as usize {
                let tid: Tid = layout::tid(&page, nb, cap, i);
                r.entries += 1;
                r.tids += 1;
                r.tail_rows += 1;
                if tid.offset == 0 {
                    r.problems
                        .push(format!("{name} block {block}: invalid TID {tid:?}"));
                }
                if collect {
                    r.contents
                        .push((tid, layout::codes(&page, nb, i, i + 1).to_vec()));
                }
            }
            block = s.prev;
        }
    }
    Ok(r)
}
