//! The substring strategy's pages.
//!
//! ```text
//! block 0      metapage: header | Meta (40 bytes, crate::format) | SubHeader (40 bytes) |
//!              TableHeader x m (24 bytes each) | map block numbers x map_pages (u32)
//! runs         pages listed, in order, by the map pages ("the page list"):
//!                table 0 records | table 0 slots | table 1 records | table 1 slots | ... |
//!                table 0 codes (format 4 on; absent from indexes built before it)
//! tail         chains of append pages (newest first), rows inserted since the last merge
//! every page   header | contents ...................................... | Special (32 bytes)
//! ```
//!
//! SubHeader: m u32 (0: no tables yet) | generation u32 | runs_rows u64 (table 0 records,
//!   tombstones included) | tombstones u64 | tail u32 (newest tail page) | sealed u32 (newest
//!   page of a tail being merged) | map_pages u32 | retired u32 (newest page of a tail chain a
//!   merge replaced, until its pages are marked deleted).
//! TableHeader: start u32 | bits u32 (the substring) | slot_bits u32 | records u32 |
//!   rec_first u32 | slot_first u32 (page-list positions of its records and slot pages).
//! Special: prev u32 | flags u16 | page_id u16 = 0xFF8B | deleted_xid u64 (as every data
//!   page, crate::format::DataOpaque; on a live tail page: the next transaction id when the
//!   page was made, its *birth*, 0 if unknown) | count u32 | kind u8 | table u8 |
//!   reserved u16 | generation u32 | reserved u32.
//!
//! Contents, by kind (all arrays packed from the start of the contents, capacity fixed by the
//! code length; pd_lower = pd_upper, so Generic WAL diffs the whole page):
//! - Records, table 0: codes [cap x code_bytes] | TIDs [cap x 6]: every row, sorted by code.
//!   A dead row's TID becomes (0, 0) (a tombstone) until the next merge drops it.
//! - Records, table j > 0: codes [cap x code_bytes]: each distinct code once, sorted by
//!   (substring j, code).
//! - Slots: u32 record positions; entry s is where slot s starts (2^slot_bits + 1 entries).
//! - Tail: codes [cap x code_bytes] | TIDs [cap x 6], `count` used, in insertion order.
//! - Map: u32 block numbers of the page list.
//! - Codes (table 0's codes again, in the same order): a copy of what identifies the page
//!   (page_id u16 | kind u8 | table u8 | generation u32 | count u32, then zeros to 40 bytes),
//!   then codes [cap x code_bytes] from byte 64 of the page (a cache-line boundary where the
//!   buffer is 64-byte aligned). The header's pd_prune_xid holds a mark of the generation
//!   ([`codes_mark`]), which no row data can write: a recycled page whose first contents are
//!   codes someone chose cannot pass for a codes page. A pass checks the mark and the copy,
//!   on the page's first cache line, instead of the special space at its far end: one memory
//!   access less per page.
//!
//! Codes and TIDs are stored apart (not as (code, TID) pairs) so that the Hamming kernels run
//! over a contiguous block of codes. The codes pages exist for the linear pass: without TIDs
//! a page holds 1,012 64-bit codes instead of 581, so a pass reads 43% fewer pages, and
//! they are never written after the build (VACUUM marks dead rows in table 0's TIDs), so
//! nothing but a merge's new generation replaces them. A code the pass keeps is known by its
//! position; its TID is read from table 0 only if the executor asks for the row.

use crate::format::{
    FormatError, Meta, Tid, FLAG_DELETED, INVALID_BLOCK, META_SIZE, SUBSTRING_PAGE_ID,
};
use crate::page::{Page, HEADER_SIZE, PAGE_SIZE};
use crate::substrings::plan::Substring;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const SPECIAL_SIZE: usize = 32;
/// Bytes of contents on every substring page.
pub const CONTENTS: usize = PAGE_SIZE - HEADER_SIZE - SPECIAL_SIZE;
const U32: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Tail = 1,
    Records = 2,
    Slots = 3,
    Map = 4,
    Codes = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Tail,
            2 => Kind::Records,
            3 => Kind::Slots,
            4 => Kind::Map,
            5 => Kind::Codes,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct SpecialBytes {
    prev: u32,
    flags: u16,
    page_id: u16,
    deleted_xid: u64,
    count: u32,
    kind: u8,
    table: u8,
    reserved: u16,
    generation: u32,
    reserved2: u32,
}

/// A substring page's special space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Special {
    pub prev: u32,
    pub flags: u16,
    pub deleted_xid: u64,
    pub count: u32,
    pub kind: Kind,
    pub table: u8,
    pub generation: u32,
}

impl Special {
    /// The special space of `page`, if it is one of ours.
    pub fn read(page: &Page) -> Option<Special> {
        Special::parse(page).ok()
    }

    /// The special space of `page`, or why it is no substring page: `Err(None)` for a new
    /// page, else the field that is wrong, what it should be and what it is.
    fn parse(page: &Page) -> Result<Special, Option<(&'static str, String, String)>> {
        if page.is_new() {
            return Err(None);
        }
        if page.special_offset() != PAGE_SIZE - SPECIAL_SIZE {
            return Err(Some((
                "pd_special",
                (PAGE_SIZE - SPECIAL_SIZE).to_string(),
                page.special_offset().to_string(),
            )));
        }
        let s = SpecialBytes::read_from_bytes(page.special())
            .expect("internal invariant: the special space is SPECIAL_SIZE bytes");
        if s.page_id != SUBSTRING_PAGE_ID {
            return Err(Some((
                "the page id",
                format!("{SUBSTRING_PAGE_ID:#06x}"),
                format!("{:#06x}", s.page_id),
            )));
        }
        let Some(kind) = Kind::from_u8(s.kind) else {
            return Err(Some((
                "the page kind",
                "1 (tail), 2 (records), 3 (slots), 4 (map) or 5 (codes)".into(),
                s.kind.to_string(),
            )));
        };
        Ok(Special {
            prev: s.prev,
            flags: s.flags,
            deleted_xid: s.deleted_xid,
            count: s.count,
            kind,
            table: s.table,
            generation: s.generation,
        })
    }

    pub fn write(&self, page: &mut Page) {
        let s = SpecialBytes {
            prev: self.prev,
            flags: self.flags,
            page_id: SUBSTRING_PAGE_ID,
            deleted_xid: self.deleted_xid,
            count: self.count,
            kind: self.kind as u8,
            table: self.table,
            reserved: 0,
            generation: self.generation,
            reserved2: 0,
        };
        page.special_mut().copy_from_slice(s.as_bytes());
    }

    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    /// A live tail page's birth stamp ([`set_birth`]), if it has one.
    pub fn birth(&self) -> Option<u64> {
        (self.kind == Kind::Tail && !self.is_deleted() && self.deleted_xid != 0)
            .then_some(self.deleted_xid)
    }
}

/// What a reader expects a page to be before it trusts the page's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub kind: Kind,
    pub table: u8,
    /// The generation of tables it belongs to (`None`: any; tail pages outlive merges).
    pub generation: Option<u32>,
    /// The record (or entry) counts it may hold.
    pub min_count: usize,
    pub max_count: usize,
}

impl Want {
    /// A live tail page of codes of `code_bytes`.
    pub fn tail(code_bytes: usize) -> Want {
        Want {
            kind: Kind::Tail,
            table: 0,
            generation: None,
            min_count: 0,
            max_count: capacity(code_bytes, true),
        }
    }

    /// A page of table `table` of `generation` holding exactly `count` records or entries.
    pub fn run(kind: Kind, table: usize, generation: u32, count: usize) -> Want {
        Want {
            kind,
            table: table as u8,
            generation: Some(generation),
            min_count: count,
            max_count: count,
        }
    }
}

/// Why a page cannot be read as the page a reader wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageFault {
    /// A new page, or a well-formed substring page of another kind, table or generation: on a
    /// hot standby, a page recycled under a scan ([`crate::relation::Relation::page_recycled_under_scan`]);
    /// anywhere else, corruption.
    Replaced { block: u32, error: FormatError },
    /// Bytes the format does not allow: corruption wherever it is read.
    Garbage(FormatError),
}

impl From<PageFault> for FormatError {
    fn from(f: PageFault) -> FormatError {
        match f {
            PageFault::Replaced { error, .. } | PageFault::Garbage(error) => error,
        }
    }
}

impl PageFault {
    /// Ends a scan that met this fault: a replaced page fails as recycled (40001, retry), garbage as
    /// corruption.
    pub fn end_scan<R: crate::relation::Relation>(self, rel: &R) -> ! {
        match self {
            PageFault::Replaced { block, .. } => rel.page_recycled_under_scan(block),
            PageFault::Garbage(e) => rel.corrupted(e),
        }
    }
}

/// The special space of page `block`, once it is checked to be the page `want` describes: its
/// header, page id and kind well-formed, its kind, table and generation those wanted, its count
/// within what the page can hold. Once per page, before any of its bytes are trusted.
pub fn check_page(page: &Page, block: u32, want: &Want) -> Result<Special, PageFault> {
    let bad = |field, expected, found| FormatError::BadField {
        block,
        field,
        expected,
        found,
    };
    let s = match Special::parse(page) {
        Ok(s) => s,
        Err(None) => {
            return Err(PageFault::Replaced {
                block,
                error: FormatError::NotDataPage { block },
            })
        }
        Err(Some((field, expected, found))) => {
            return Err(PageFault::Garbage(bad(field, expected, found)))
        }
    };
    if s.kind != want.kind
        || s.table != want.table
        || want.generation.is_some_and(|g| g != s.generation)
    {
        let describe = |kind: Kind, table: u8, generation: Option<u32>| {
            let g = generation.map_or_else(|| "any".into(), |g| g.to_string());
            format!("a {kind:?} page of table {table}, generation {g}")
        };
        return Err(PageFault::Replaced {
            block,
            error: bad(
                "the page's kind, table and generation",
                describe(want.kind, want.table, want.generation),
                describe(s.kind, s.table, Some(s.generation)),
            ),
        });
    }
    let count = s.count as usize;
    if count < want.min_count || count > want.max_count {
        let expected = if want.min_count == want.max_count {
            want.min_count.to_string()
        } else {
            format!("{} to {}", want.min_count, want.max_count)
        };
        return Err(PageFault::Garbage(bad(
            "the page's count",
            expected,
            count.to_string(),
        )));
    }
    Ok(s)
}

/// Initialises an empty page of `kind`.
pub fn init_page(page: &mut Page, kind: Kind, table: u8, generation: u32, prev: u32) {
    page.init(SPECIAL_SIZE);
    Special {
        prev,
        flags: 0,
        deleted_xid: 0,
        count: 0,
        kind,
        table,
        generation,
    }
    .write(page);
    // No hole: the arrays fill the page, Generic WAL diffs all of it.
    let upper = page.upper();
    page.set_lower(upper);
}

/// Stamps a live tail page with the transaction id counter at its making (see
/// `vacuum::reclaim`); kept in the `deleted_xid` field, which only deleted pages use otherwise.
pub fn set_birth(page: &mut Page, next_xid: u64) {
    let mut s = Special::read(page).expect("internal invariant: set_birth on a substring page");
    s.deleted_xid = next_xid;
    s.write(page);
}

/// Sets a page's record count.
pub fn set_count(page: &mut Page, count: u32) {
    let mut s = Special::read(page).expect("internal invariant: set_count on a substring page");
    s.count = count;
    s.write(page);
}

/// Records a page of `code_bytes` codes holds: with TIDs (table 0, tail) or without.
pub const fn capacity(code_bytes: usize, with_tids: bool) -> usize {
    CONTENTS / (code_bytes + if with_tids { Tid::SIZE } else { 0 })
}

/// Bytes before the first code of a codes page: the contents start 24 bytes into the page,
/// and codes from byte 64 on never straddle a cache line in a 64-byte load.
pub const CODES_PAD: usize = 64 - HEADER_SIZE;

/// The identification a codes page carries before its codes (see the module docs).
fn codes_ident(kind: Kind, table: u8, generation: u32, count: u32) -> [u8; 12] {
    let mut id = [0u8; 12];
    id[..2].copy_from_slice(&SUBSTRING_PAGE_ID.to_ne_bytes());
    id[2] = kind as u8;
    id[3] = table;
    id[4..8].copy_from_slice(&generation.to_ne_bytes());
    id[8..].copy_from_slice(&count.to_ne_bytes());
    id
}

/// The mark a codes page of `generation` carries in its header's pd_prune_xid: never 0 (what
/// every other page of the index has there).
pub fn codes_mark(generation: u32) -> u32 {
    generation.wrapping_mul(0x9E37_79B1) | 1
}

/// Copies a codes page's identification from its special space, and marks its header (when
/// it is written).
pub fn set_codes_ident(page: &mut Page) {
    let s = Special::read(page).expect("internal invariant: a codes page");
    let id = codes_ident(s.kind, s.table, s.generation, s.count);
    page.contents_mut()[..id.len()].copy_from_slice(&id);
    page.set_prune_xid(codes_mark(s.generation));
}

/// Checks a codes page as [`check_page`] does, from the copy before its codes when it matches
/// (the special space is read only to tell what is wrong, or when the copy is not right).
pub fn check_codes_page(page: &Page, block: u32, want: &Want) -> Result<(), PageFault> {
    debug_assert_eq!((want.kind, want.min_count), (Kind::Codes, want.max_count));
    let id = codes_ident(
        want.kind,
        want.table,
        want.generation.expect("a run page"),
        want.min_count as u32,
    );
    let found = |page: &Page| {
        format!(
            "{:#x} and {:?}",
            page.prune_xid(),
            &page.contents()[..id.len()]
        )
    };
    let generation = want.generation.expect("a run page");
    if !page.is_new()
        && page.prune_xid() == codes_mark(generation)
        && page.contents().get(..id.len()) == Some(&id[..])
    {
        return Ok(());
    }
    // A page of this generation listed where a codes page should be is no recycling: the
    // page list is wrong (corruption, not a retry).
    if let Some(s) = Special::read(page) {
        if s.generation == generation && s.kind != Kind::Codes {
            return Err(PageFault::Garbage(FormatError::BadField {
                block,
                field: "the page's kind",
                expected: "a codes page".into(),
                found: format!("a {:?} page of the same generation", s.kind),
            }));
        }
    }
    check_page(page, block, want)?;
    Err(PageFault::Garbage(FormatError::BadField {
        block,
        field: "the codes page's mark and copy of its identification",
        expected: format!("{:#x} and {id:?}", codes_mark(generation)),
        found: found(page),
    }))
}

/// Codes a codes page holds.
pub const fn codes_capacity(code_bytes: usize) -> usize {
    (CONTENTS - CODES_PAD) / code_bytes
}

/// The first `count` codes of a codes page.
pub fn codes_page(page: &Page, code_bytes: usize, count: usize) -> &[u8] {
    &page.contents()[CODES_PAD..CODES_PAD + count * code_bytes]
}

/// Sets code `i` of a codes page.
pub fn set_codes_page(page: &mut Page, code_bytes: usize, i: usize, code: &[u8]) {
    let at = CODES_PAD + i * code_bytes;
    page.contents_mut()[at..at + code_bytes].copy_from_slice(code);
}

/// u32 entries a slots or map page holds.
pub const U32_CAPACITY: usize = CONTENTS / U32;

/// The codes of records `from .. to` on a records or tail page.
pub fn codes(page: &Page, code_bytes: usize, from: usize, to: usize) -> &[u8] {
    &page.contents()[from * code_bytes..to * code_bytes]
}

/// The TID of record `i` on a page of capacity `cap` (table 0 or tail).
pub fn tid(page: &Page, code_bytes: usize, cap: usize, i: usize) -> Tid {
    let at = cap * code_bytes + i * Tid::SIZE;
    Tid::from_bytes(&page.contents()[at..at + Tid::SIZE])
}

pub fn set_record(
    page: &mut Page,
    code_bytes: usize,
    cap: usize,
    i: usize,
    code: &[u8],
    tid: Option<Tid>,
) {
    let c = page.contents_mut();
    c[i * code_bytes..(i + 1) * code_bytes].copy_from_slice(code);
    if let Some(t) = tid {
        let at = cap * code_bytes + i * Tid::SIZE;
        c[at..at + Tid::SIZE].copy_from_slice(&t.to_bytes());
    }
}

/// The TID a dead row's record carries until the next merge.
pub const TOMBSTONE: Tid = Tid {
    block: 0,
    offset: 0,
};

pub fn u32_at(page: &Page, i: usize) -> u32 {
    u32::from_ne_bytes(page.contents()[i * U32..i * U32 + U32].try_into().unwrap())
}

pub fn set_u32_at(page: &mut Page, i: usize, v: u32) {
    page.contents_mut()[i * U32..i * U32 + U32].copy_from_slice(&v.to_ne_bytes());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct SubHeader {
    m: u32,
    generation: u32,
    runs_rows: u64,
    tombstones: u64,
    tail: u32,
    sealed: u32,
    map_pages: u32,
    retired: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct TableHeader {
    start: u32,
    bits: u32,
    slot_bits: u32,
    records: u32,
    rec_first: u32,
    slot_first: u32,
}

const SUB_HEADER_SIZE: usize = std::mem::size_of::<SubHeader>();
const TABLE_HEADER_SIZE: usize = std::mem::size_of::<TableHeader>();
/// Most map pages the metapage can list (with [`crate::substrings::plan::MAX_SUBSTRINGS`]
/// tables): about 3.9 million run pages, a 30 GB index.
pub const MAX_MAP_PAGES: usize = (PAGE_SIZE
    - HEADER_SIZE
    - crate::format::META_SPECIAL_SIZE
    - META_SIZE
    - SUB_HEADER_SIZE
    - crate::substrings::plan::MAX_SUBSTRINGS as usize * TABLE_HEADER_SIZE)
    / U32;

/// One table of a generation of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub sub: Substring,
    pub slot_bits: u32,
    pub records: u32,
    /// Page-list position of the first records page.
    pub rec_first: u32,
    /// Page-list position of the first slots page.
    pub slot_first: u32,
}

impl Table {
    pub fn slots(&self) -> usize {
        1 << self.slot_bits
    }

    pub fn rec_pages(&self, cap: usize) -> usize {
        (self.records as usize).div_ceil(cap)
    }

    pub fn slot_pages(&self) -> usize {
        (self.slots() + 1).div_ceil(U32_CAPACITY)
    }
}

/// The substring strategy's part of the metapage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubMeta {
    pub generation: u32,
    pub runs_rows: u64,
    pub tombstones: u64,
    pub tail: u32,
    pub sealed: u32,
    pub retired: u32,
    pub tables: Vec<Table>,
    pub map_blocks: Vec<u32>,
}

impl SubMeta {
    /// No tables yet, no tail.
    pub fn empty() -> SubMeta {
        SubMeta {
            tail: INVALID_BLOCK,
            sealed: INVALID_BLOCK,
            retired: INVALID_BLOCK,
            ..Default::default()
        }
    }

    /// Reads the section after `Meta` on the metapage.
    pub fn read(page: &Page) -> Result<SubMeta, String> {
        let c = &page.contents()[META_SIZE..];
        let h = SubHeader::read_from_prefix(c)
            .map_err(|_| "short metapage")?
            .0;
        let m = h.m as usize;
        let maps = h.map_pages as usize;
        if m > crate::substrings::plan::MAX_SUBSTRINGS as usize || maps > MAX_MAP_PAGES {
            return Err(format!("{m} tables, {maps} map pages"));
        }
        let mut at = SUB_HEADER_SIZE;
        let mut tables = Vec::with_capacity(m);
        for _ in 0..m {
            let t = TableHeader::read_from_prefix(&c[at..])
                .map_err(|_| "short metapage")?
                .0;
            if t.slot_bits > crate::substrings::plan::MAX_SLOT_BITS {
                return Err(format!("{t:?}"));
            }
            tables.push(Table {
                sub: Substring {
                    start: t.start,
                    bits: t.bits,
                },
                slot_bits: t.slot_bits,
                records: t.records,
                rec_first: t.rec_first,
                slot_first: t.slot_first,
            });
            at += TABLE_HEADER_SIZE;
        }
        let map_blocks = (0..maps)
            .map(|i| u32::from_ne_bytes(c[at + i * U32..at + i * U32 + U32].try_into().unwrap()))
            .collect();
        Ok(SubMeta {
            generation: h.generation,
            runs_rows: h.runs_rows,
            tombstones: h.tombstones,
            tail: h.tail,
            sealed: h.sealed,
            retired: h.retired,
            tables,
            map_blocks,
        })
    }

    /// Writes the whole metapage: `meta` and this section.
    pub fn write(&self, meta: &Meta, page: &mut Page) {
        assert!(self.map_blocks.len() <= MAX_MAP_PAGES, "index too large");
        meta.write(page);
        let h = SubHeader {
            m: self.tables.len() as u32,
            generation: self.generation,
            runs_rows: self.runs_rows,
            tombstones: self.tombstones,
            tail: self.tail,
            sealed: self.sealed,
            map_pages: self.map_blocks.len() as u32,
            retired: self.retired,
        };
        let mut bytes = h.as_bytes().to_vec();
        for t in &self.tables {
            let th = TableHeader {
                start: t.sub.start,
                bits: t.sub.bits,
                slot_bits: t.slot_bits,
                records: t.records,
                rec_first: t.rec_first,
                slot_first: t.slot_first,
            };
            bytes.extend_from_slice(th.as_bytes());
        }
        for b in &self.map_blocks {
            bytes.extend_from_slice(&b.to_ne_bytes());
        }
        page.contents_mut()[META_SIZE..META_SIZE + bytes.len()].copy_from_slice(&bytes);
        page.set_lower(HEADER_SIZE + META_SIZE + bytes.len());
    }

    pub fn m(&self) -> usize {
        self.tables.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_round_trip_and_kind_check() {
        let mut p = Page::zeroed();
        assert!(Special::read(&p).is_none());
        init_page(&mut p, Kind::Records, 2, 7, 99);
        let s = Special::read(&p).unwrap();
        assert_eq!(
            (
                s.kind,
                s.table,
                s.generation,
                s.prev,
                s.count,
                s.is_deleted()
            ),
            (Kind::Records, 2, 7, 99, 0, false)
        );
        assert_eq!(p.lower(), p.upper());
        assert!(crate::format::DataOpaque::is_any_data_page(&p));
        assert!(!crate::format::DataOpaque::is_data_page(&p));
        crate::format::DataOpaque::mark_deleted(&mut p, 1234);
        let s = Special::read(&p).unwrap();
        assert!(s.is_deleted());
        assert_eq!(s.deleted_xid, 1234);
        assert_eq!(s.kind, Kind::Records, "marking keeps our own fields");
        set_count(&mut p, 17);
        assert_eq!(Special::read(&p).unwrap().count, 17);
        // A list page is not one of ours.
        let mut l = Page::zeroed();
        crate::lists::layout::init_data_page(&mut l, 3);
        assert!(Special::read(&l).is_none());
    }

    #[test]
    fn records_fill_the_page() {
        for nb in [1usize, 8, 16, 512] {
            for tids in [false, true] {
                let cap = capacity(nb, tids);
                let mut p = Page::zeroed();
                init_page(&mut p, Kind::Tail, 0, 0, INVALID_BLOCK);
                let code: Vec<u8> = (0..nb).map(|i| i as u8).collect();
                let t = Tid {
                    block: 0x0102_0304,
                    offset: 7,
                };
                set_record(&mut p, nb, cap, cap - 1, &code, tids.then_some(t));
                assert_eq!(codes(&p, nb, cap - 1, cap), &code[..]);
                if tids {
                    assert_eq!(tid(&p, nb, cap, cap - 1), t);
                }
                assert!(cap * (nb + if tids { 6 } else { 0 }) <= CONTENTS);
            }
        }
        assert_eq!(capacity(8, true), 581);
        assert_eq!(U32_CAPACITY, 2034);
    }

    #[test]
    fn submeta_round_trip() {
        let meta = Meta::new_substrings(8, 1000);
        let sub = SubMeta {
            generation: 3,
            runs_rows: 1000,
            tombstones: 5,
            tail: 77,
            sealed: INVALID_BLOCK,
            retired: 12,
            tables: vec![
                Table {
                    sub: Substring { start: 0, bits: 22 },
                    slot_bits: 3,
                    records: 1000,
                    rec_first: 0,
                    slot_first: 2,
                },
                Table {
                    sub: Substring {
                        start: 22,
                        bits: 21,
                    },
                    slot_bits: 2,
                    records: 990,
                    rec_first: 3,
                    slot_first: 4,
                },
            ],
            map_blocks: vec![5, 6],
        };
        let mut p = Page::zeroed();
        sub.write(&meta, &mut p);
        assert_eq!(Meta::read(&p).unwrap(), meta);
        assert_eq!(SubMeta::read(&p).unwrap(), sub);
        let big = SubMeta {
            map_blocks: vec![1; MAX_MAP_PAGES],
            tables: vec![sub.tables[0]; 16],
            ..SubMeta::empty()
        };
        big.write(&meta, &mut p);
        assert_eq!(SubMeta::read(&p).unwrap(), big);
    }
}
