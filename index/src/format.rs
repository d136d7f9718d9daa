//! The on-disk format of a `mih` index: what both strategies share (format version 4). All
//! pages use PostgreSQL's standard page layout (see [`crate::page`]); integers are in native
//! byte order (as PostgreSQL's own pages), TIDs in `ItemPointerData` layout.
//!
//! ```text
//! block 0          metapage: header | Meta (40 bytes) | the strategy's own section
//! other blocks     the strategy's pages: lists (crate::lists::layout) or substring tables
//!                  (crate::substrings::layout)
//! ```
//!
//! Meta (40 bytes): magic u32 = "MIH\x01" | version u32 | code_bytes u32 | lists u32 |
//!   dir_pages u32 | records_per_page u32 | record_size u32 | build_rows u64 | strategy u32.
//!   `lists` .. `record_size` describe the lists strategy's directory (zero for substring
//!   tables). `strategy`: 0 lists, 1 substring tables. Version 1 (lists only) had 0 in that
//!   word, so a version-1 index reads as a lists index and needs no REINDEX.
//!
//! Metapage special space (version 3; none before): nulls u32 (newest page of the chain of
//! rows whose code is NULL, see [`crate::nulls`], or InvalidBlockNumber) | reserved u32.
//! Versions 1 and 2 did not index NULL codes: such an index keeps answering radius queries
//! and taking inserts, but a k-NN scan, which must return the NULL rows last, refuses it
//! ([`FormatError::NullsNotIndexed`]) until a REINDEX writes version 3 or later.
//!
//! Version 4 adds nothing to the metapage: substring-table indexes built (or merged) from
//! version 4 on list table 0's codes again on codes pages after the tables
//! ([`crate::substrings::layout`]); an index without them (version 3, or an older build
//! not merged since) is read as it is, its linear passes over table 0's records pages.
//!
//! Every data page's special space starts with the same 16 bytes ([`DataOpaque`]):
//!   prev u32 (next older page of a chain, or InvalidBlockNumber) | flags u16 |
//!   page_id u16 (0xFF8A a list page, 0xFF8B a substring-table page) | deleted_xid u64 (the
//!   next full transaction id when the page left the index; it is recycled once no snapshot
//!   can still be reading it). A code length of 0: an index that older versions built on an empty
//!   `hashcode` column without a declared length (it holds no codes; the extension refuses
//!   inserts into it until the column gets a length, which rebuilds it).

use crate::page::{Page, HEADER_SIZE};
use crate::relation::Relation;
use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const MAGIC: u32 = u32::from_le_bytes(*b"MIH\x01");
pub const VERSION: u32 = 4;
/// The first version whose indexes hold the rows with NULL codes.
pub const NULLS_VERSION: u32 = 3;
/// Special space of a version-3 metapage.
pub const META_SPECIAL_SIZE: usize = 8;
pub const INVALID_BLOCK: u32 = u32::MAX;
pub const META_BLOCK: u32 = 0;

/// The metapage of a relation a build starts from empty, exclusively locked for the build to
/// write.
pub fn new_metapage<R: Relation>(rel: &R) -> R::Write<'_> {
    let (block, page) = rel.new_page();
    assert_eq!(block, META_BLOCK, "a build starts from an empty relation");
    page
}
pub const FIRST_DIR_BLOCK: u32 = 1;
/// page_id of a list data page.
pub const PAGE_ID: u16 = 0xFF8A;
/// page_id of a substring-table page.
pub const SUBSTRING_PAGE_ID: u16 = 0xFF8B;
/// page_id of a page of the NULL-code chain ([`crate::nulls`]).
pub const NULLS_PAGE_ID: u16 = 0xFF8C;
pub const DATA_SPECIAL_SIZE: usize = 16;
pub const META_SIZE: usize = 40;

/// Data page flags.
pub const FLAG_DELETED: u16 = 1;

/// How an index organises its codes, chosen at build time and recorded in the metapage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Clusters: codes in the list of their nearest centroid, each list with a covering radius.
    Lists,
    /// Multi-index hashing: one table per substring of the codes, plus an append-only tail.
    Substrings,
}

impl Strategy {
    fn to_word(self) -> u32 {
        match self {
            Strategy::Lists => 0,
            Strategy::Substrings => 1,
        }
    }

    fn from_word(w: u32) -> Option<Strategy> {
        match w {
            0 => Some(Strategy::Lists),
            1 => Some(Strategy::Substrings),
            _ => None,
        }
    }

    /// The name users see (`WITH (strategy = ...)`, `mih_verify`).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Lists => "lists",
            Strategy::Substrings => "substrings",
        }
    }
}

/// A heap tuple id (`ItemPointerData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid {
    pub block: u32,
    pub offset: u16,
}

impl Tid {
    pub const SIZE: usize = 6;

    pub fn to_bytes(self) -> [u8; 6] {
        let hi = ((self.block >> 16) as u16).to_ne_bytes();
        let lo = (self.block as u16).to_ne_bytes();
        let off = self.offset.to_ne_bytes();
        [hi[0], hi[1], lo[0], lo[1], off[0], off[1]]
    }

    pub fn from_bytes(b: &[u8]) -> Tid {
        let hi = u16::from_ne_bytes([b[0], b[1]]) as u32;
        let lo = u16::from_ne_bytes([b[2], b[3]]) as u32;
        Tid {
            block: (hi << 16) | lo,
            offset: u16::from_ne_bytes([b[4], b[5]]),
        }
    }
}

/// The metapage's first 40 bytes as stored (native byte order; build_rows is not 8-aligned,
/// as in version 1, so the fields are unaligned integers).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct MetaBytes {
    magic: U32,
    version: U32,
    code_bytes: U32,
    lists: U32,
    dir_pages: U32,
    records_per_page: U32,
    record_size: U32,
    build_rows: U64,
    strategy: U32,
}

/// The first 16 bytes of a data page's special space as stored.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct OpaqueBytes {
    prev: u32,
    flags: u16,
    page_id: u16,
    deleted_xid: u64,
}

const _: () = assert!(std::mem::size_of::<MetaBytes>() == META_SIZE);
const _: () = assert!(std::mem::size_of::<OpaqueBytes>() == DATA_SPECIAL_SIZE);

/// The metapage's common contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub code_bytes: u32,
    pub lists: u32,
    pub dir_pages: u32,
    pub records_per_page: u32,
    pub record_size: u32,
    /// Rows seen by the last build (for statistics; inserts do not update it).
    pub build_rows: u64,
    pub strategy: Strategy,
    /// The on-disk format version (kept when the metapage is rewritten: an older index does
    /// not become a newer one without a REINDEX).
    pub version: u32,
    /// Version 3: the newest page of the NULL-code chain, or [`INVALID_BLOCK`].
    pub nulls: u32,
}

/// Why a page cannot be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    NotInitialised,
    BadMagic(u32),
    UnsupportedVersion(u32),
    BadMeta(String),
    NotDataPage {
        block: u32,
    },
    /// A page that is what it should be but whose contents are not.
    BadPage {
        block: u32,
        why: &'static str,
    },
    /// A field of page `block` whose stored value the format does not allow.
    BadField {
        block: u32,
        field: &'static str,
        expected: String,
        found: String,
    },
    /// A k-NN scan of an index written before NULL codes were indexed.
    NullsNotIndexed {
        version: u32,
    },
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::NotInitialised => write!(f, "the metapage is not initialised"),
            FormatError::BadMagic(m) => {
                write!(f, "the metapage has magic {m:#010x}, not a mih index's")
            }
            FormatError::UnsupportedVersion(v) => {
                write!(f, "the index has on-disk format version {v}; this ics_hash reads versions 1 to {VERSION}")
            }
            FormatError::BadMeta(why) => write!(f, "the metapage is inconsistent: {why}"),
            FormatError::NotDataPage { block } => write!(f, "block {block} is not a mih data page"),
            FormatError::BadPage { block, why } => write!(f, "block {block} is inconsistent: {why}"),
            FormatError::BadField {
                block,
                field,
                expected,
                found,
            } => write!(f, "block {block}: {field} is {found}, expected {expected}"),
            FormatError::NullsNotIndexed { version } => write!(
                f,
                "the index has on-disk format version {version}, which does not hold the rows whose code is NULL, so it cannot order every row by distance"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

impl Meta {
    /// A lists index of `lists` lists.
    pub fn new(code_bytes: usize, lists: usize, build_rows: u64) -> Meta {
        let record_size = code_bytes + 8;
        let records_per_page = (Page::max_item_size(0) + crate::page::ITEM_ID_SIZE) / record_size;
        let dir_pages = lists.div_ceil(records_per_page).max(1);
        Meta {
            code_bytes: code_bytes as u32,
            lists: lists as u32,
            dir_pages: dir_pages as u32,
            records_per_page: records_per_page as u32,
            record_size: record_size as u32,
            build_rows,
            strategy: Strategy::Lists,
            version: VERSION,
            nulls: INVALID_BLOCK,
        }
    }

    /// This description, with the format version and NULL-code chain of `old` (the metapage
    /// being rewritten): resets and length fixes keep the index's NULL rows and format.
    pub fn keeping(self, old: &Meta) -> Meta {
        Meta {
            version: old.version,
            nulls: old.nulls,
            ..self
        }
    }

    /// Points a version-3 metapage to a new newest page of the NULL-code chain (the rest of
    /// the metapage as it is).
    pub fn set_nulls(page: &mut Page, nulls: u32) {
        page.special_mut()[..4].copy_from_slice(&nulls.to_ne_bytes());
    }

    /// Whether the index holds the rows whose code is NULL (version 3 on).
    pub fn holds_nulls(&self) -> bool {
        self.version >= NULLS_VERSION
    }

    /// A substring-tables index (its tables are described in its own metapage section).
    pub fn new_substrings(code_bytes: usize, build_rows: u64) -> Meta {
        Meta {
            code_bytes: code_bytes as u32,
            lists: 0,
            dir_pages: 0,
            records_per_page: 0,
            record_size: 0,
            build_rows,
            strategy: Strategy::Substrings,
            version: VERSION,
            nulls: INVALID_BLOCK,
        }
    }

    /// Initialises `page` as the metapage with these contents (pd_lower past them).
    pub fn write(&self, page: &mut Page) {
        page.init(if self.holds_nulls() {
            META_SPECIAL_SIZE
        } else {
            0
        });
        let bytes = MetaBytes {
            magic: MAGIC.into(),
            version: self.version.into(),
            code_bytes: self.code_bytes.into(),
            lists: self.lists.into(),
            dir_pages: self.dir_pages.into(),
            records_per_page: self.records_per_page.into(),
            record_size: self.record_size.into(),
            build_rows: self.build_rows.into(),
            strategy: self.strategy.to_word().into(),
        };
        page.contents_mut()[..META_SIZE].copy_from_slice(bytes.as_bytes());
        if self.holds_nulls() {
            Meta::set_nulls(page, self.nulls);
        }
        page.set_lower(HEADER_SIZE + META_SIZE);
    }

    pub fn read(page: &Page) -> Result<Meta, FormatError> {
        if page.is_new() {
            return Err(FormatError::NotInitialised);
        }
        let b = MetaBytes::read_from_prefix(page.contents())
            .map_err(|_| FormatError::BadMeta("short metapage".into()))?
            .0;
        if b.magic.get() != MAGIC {
            return Err(FormatError::BadMagic(b.magic.get()));
        }
        if b.version.get() == 0 || b.version.get() > VERSION {
            return Err(FormatError::UnsupportedVersion(b.version.get()));
        }
        let strategy = Strategy::from_word(b.strategy.get()).ok_or_else(|| {
            FormatError::BadMeta(format!("unknown strategy {}", b.strategy.get()))
        })?;
        let version = b.version.get();
        let nulls = if version >= NULLS_VERSION {
            let sp = page.special();
            if sp.len() != META_SPECIAL_SIZE {
                return Err(FormatError::BadMeta(format!(
                    "{} bytes of metapage special space",
                    sp.len()
                )));
            }
            u32::from_ne_bytes(sp[..4].try_into().expect("4 bytes"))
        } else {
            INVALID_BLOCK
        };
        let meta = Meta {
            version,
            nulls,
            code_bytes: b.code_bytes.get(),
            lists: b.lists.get(),
            dir_pages: b.dir_pages.get(),
            records_per_page: b.records_per_page.get(),
            record_size: b.record_size.get(),
            build_rows: b.build_rows.get(),
            strategy,
        };
        let expect = match strategy {
            Strategy::Lists => Meta::new(
                meta.code_bytes as usize,
                meta.lists as usize,
                meta.build_rows,
            ),
            Strategy::Substrings => Meta::new_substrings(meta.code_bytes as usize, meta.build_rows),
        }
        .keeping(&meta);
        // Lists with length 0: an empty index older versions built without a length, no lists.
        let lists_ok = strategy != Strategy::Lists || (meta.code_bytes == 0) == (meta.lists == 0);
        if !lists_ok || meta != expect {
            return Err(FormatError::BadMeta(format!("{meta:?}")));
        }
        Ok(meta)
    }

    /// Directory block and byte offset (within the page contents) of list `l`'s record.
    pub fn record_location(&self, l: usize) -> (u32, usize) {
        let per = self.records_per_page as usize;
        (
            FIRST_DIR_BLOCK + (l / per) as u32,
            (l % per) * self.record_size as usize,
        )
    }

    /// First block after the metapage (and the lists' directory).
    pub fn first_data_block(&self) -> u32 {
        FIRST_DIR_BLOCK + self.dir_pages
    }
}

/// The first 16 bytes of every data page's special space (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOpaque {
    pub prev: u32,
    pub flags: u16,
    pub deleted_xid: u64,
}

impl DataOpaque {
    pub fn read(page: &Page) -> DataOpaque {
        let b = OpaqueBytes::read_from_prefix(page.special())
            .expect("a data page's special space holds 16 bytes")
            .0;
        DataOpaque {
            prev: b.prev,
            flags: b.flags,
            deleted_xid: b.deleted_xid,
        }
    }

    /// Writes these fields (and `page_id`) over the first 16 bytes of the special space.
    pub fn write_with_id(&self, page: &mut Page, page_id: u16) {
        let b = OpaqueBytes {
            prev: self.prev,
            flags: self.flags,
            page_id,
            deleted_xid: self.deleted_xid,
        };
        page.special_mut()[..DATA_SPECIAL_SIZE].copy_from_slice(b.as_bytes());
    }

    /// Writes a list page's special space.
    pub fn write(&self, page: &mut Page) {
        self.write_with_id(page, PAGE_ID);
    }

    fn page_id(page: &Page) -> Option<u16> {
        if page.is_new() {
            return None;
        }
        OpaqueBytes::read_from_prefix(page.special())
            .ok()
            .map(|(b, _)| b.page_id)
    }

    /// Whether `page` looks like one of the lists strategy's data pages.
    pub fn is_data_page(page: &Page) -> bool {
        page.special().len() == DATA_SPECIAL_SIZE && Self::page_id(page) == Some(PAGE_ID)
    }

    /// Whether `page` is a data page of either strategy (what VACUUM may recycle).
    pub fn is_any_data_page(page: &Page) -> bool {
        matches!(Self::page_id(page), Some(PAGE_ID | SUBSTRING_PAGE_ID))
    }

    /// Marks the page as having left the index at `xid` (its contents stay readable for
    /// scans already on their way to it).
    pub fn mark_deleted(page: &mut Page, xid: u64) {
        let mut o = DataOpaque::read(page);
        o.flags |= FLAG_DELETED;
        o.deleted_xid = xid;
        let id = Self::page_id(page).unwrap_or(PAGE_ID);
        o.write_with_id(page, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_layout_is_item_pointer_data() {
        let t = Tid {
            block: 0x0102_0304,
            offset: 0x0506,
        };
        let b = t.to_bytes();
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 0x0102); // bi_hi
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 0x0304); // bi_lo
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0506); // ip_posid
        assert_eq!(Tid::from_bytes(&b), t);
    }

    #[test]
    fn meta_round_trip_and_errors() {
        let mut p = Page::zeroed();
        assert_eq!(Meta::read(&p), Err(FormatError::NotInitialised));
        let m = Meta::new(8, 1000, 12345);
        m.write(&mut p);
        assert_eq!(Meta::read(&p).unwrap(), m);
        assert_eq!(m.record_size, 16);
        assert_eq!(m.dir_pages, 1000u32.div_ceil(m.records_per_page));
        assert_eq!(m.first_data_block(), 1 + m.dir_pages);
        let (blk, off) = m.record_location(m.records_per_page as usize + 3);
        assert_eq!((blk, off), (2, 3 * 16));
        p.contents_mut()[4] = 9; // version
        assert_eq!(Meta::read(&p), Err(FormatError::UnsupportedVersion(9)));
        p.contents_mut()[0] = 0;
        assert!(matches!(Meta::read(&p), Err(FormatError::BadMagic(_))));
        // Every record of the largest code length fits its directory page.
        let big = Meta::new(512, 7, 0);
        let mut d = Page::zeroed();
        crate::lists::layout::init_dir_page(&big, &mut d, big.records_per_page as usize);
        assert!(d.lower() <= d.upper());
    }
}
