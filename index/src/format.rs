//! The on-disk format of a `mih` index (format version 1). All pages use PostgreSQL's standard
//! page layout (see [`crate::page`]); integers are in native byte order (as PostgreSQL's own
//! pages), TIDs in `ItemPointerData` layout.
//!
//! ```text
//! block 0          metapage: header | Meta                          (pd_lower past Meta)
//! blocks 1..=D     directory: header | ListRecord x per_page        (pd_lower past the records)
//! other blocks     data pages, one chain per list, newest (tail) first:
//!                  header | ItemId[] | ... free ... | entries | DataOpaque (special, 16 bytes)
//! ```
//!
//! Meta (40 bytes): magic u32 = "MIH\x01" | version u32 | code_bytes u32 | lists u32 |
//!   dir_pages u32 | records_per_page u32 | record_size u32 | build_rows u64 | reserved u32.
//!
//! ListRecord (code_bytes + 8 bytes): centroid [code_bytes] | radius u16 | flags u16 | tail u32.
//!   Every code in the list is within `radius` of `centroid` (a covering radius: it only grows,
//!   except when VACUUM recomputes it), which is what lets a search skip the list exactly.
//!   `tail` is the list's newest data page (InvalidBlockNumber when the list is empty).
//!
//! Entry (a data page item): ntids u16 | code [code_bytes] | tids [ntids x 6 bytes].
//!   One entry per distinct code per page (a posting list); learned codes repeat a lot.
//!
//! DataOpaque (special space, 16 bytes): prev u32 (next older page of the list, or
//!   InvalidBlockNumber) | flags u16 | page_id u16 = 0xFF8A | deleted_xid u64 (the next full
//!   transaction id when VACUUM unlinked the page; it is recycled once no snapshot can still be
//!   walking through it).

use crate::page::{Page, HEADER_SIZE};

pub const MAGIC: u32 = u32::from_le_bytes(*b"MIH\x01");
pub const VERSION: u32 = 1;
pub const INVALID_BLOCK: u32 = u32::MAX;
pub const META_BLOCK: u32 = 0;
pub const FIRST_DIR_BLOCK: u32 = 1;
pub const PAGE_ID: u16 = 0xFF8A;
pub const DATA_SPECIAL_SIZE: usize = 16;
const META_SIZE: usize = 40;

/// Data page flags.
pub const FLAG_DELETED: u16 = 1;

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

/// The metapage's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub code_bytes: u32,
    pub lists: u32,
    pub dir_pages: u32,
    pub records_per_page: u32,
    pub record_size: u32,
    /// Rows seen by the last build (for statistics; inserts do not update it).
    pub build_rows: u64,
}

/// Why a page cannot be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    NotInitialised,
    BadMagic(u32),
    UnsupportedVersion(u32),
    BadMeta(String),
    NotDataPage { block: u32 },
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::NotInitialised => write!(f, "the metapage is not initialised"),
            FormatError::BadMagic(m) => {
                write!(f, "the metapage has magic {m:#010x}, not a mih index's")
            }
            FormatError::UnsupportedVersion(v) => {
                write!(f, "the index has on-disk format version {v}; this ics_hash reads version {VERSION}")
            }
            FormatError::BadMeta(why) => write!(f, "the metapage is inconsistent: {why}"),
            FormatError::NotDataPage { block } => write!(f, "block {block} is not a mih data page"),
        }
    }
}

impl std::error::Error for FormatError {}

impl Meta {
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
        }
    }

    pub fn write(&self, page: &mut Page) {
        page.init(0);
        let c = page.contents_mut();
        let fields: [u32; 7] = [
            MAGIC,
            VERSION,
            self.code_bytes,
            self.lists,
            self.dir_pages,
            self.records_per_page,
            self.record_size,
        ];
        for (i, v) in fields.iter().enumerate() {
            c[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        c[28..36].copy_from_slice(&self.build_rows.to_ne_bytes());
        page.set_lower(HEADER_SIZE + META_SIZE);
    }

    pub fn read(page: &Page) -> Result<Meta, FormatError> {
        if page.is_new() {
            return Err(FormatError::NotInitialised);
        }
        let c = page.contents();
        let u = |i: usize| u32::from_ne_bytes(c[i * 4..i * 4 + 4].try_into().unwrap());
        if u(0) != MAGIC {
            return Err(FormatError::BadMagic(u(0)));
        }
        if u(1) != VERSION {
            return Err(FormatError::UnsupportedVersion(u(1)));
        }
        let meta = Meta {
            code_bytes: u(2),
            lists: u(3),
            dir_pages: u(4),
            records_per_page: u(5),
            record_size: u(6),
            build_rows: u64::from_ne_bytes(c[28..36].try_into().unwrap()),
        };
        let expect = Meta::new(
            meta.code_bytes as usize,
            meta.lists as usize,
            meta.build_rows,
        );
        // Length 0: an empty index whose code length is not known yet, with no lists.
        if (meta.code_bytes == 0) != (meta.lists == 0) || meta != expect {
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

    /// First block after the metapage and directory.
    pub fn first_data_block(&self) -> u32 {
        FIRST_DIR_BLOCK + self.dir_pages
    }
}

/// A list's directory record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    pub centroid: Vec<u8>,
    pub radius: u16,
    pub tail: u32,
}

impl ListRecord {
    pub fn read(meta: &Meta, dir_page: &Page, offset: usize) -> ListRecord {
        let nb = meta.code_bytes as usize;
        let r = &dir_page.contents()[offset..offset + nb + 8];
        ListRecord {
            centroid: r[..nb].to_vec(),
            radius: u16::from_ne_bytes([r[nb], r[nb + 1]]),
            tail: u32::from_ne_bytes(r[nb + 4..nb + 8].try_into().unwrap()),
        }
    }

    pub fn write(&self, meta: &Meta, dir_page: &mut Page, offset: usize) {
        let nb = meta.code_bytes as usize;
        let r = &mut dir_page.contents_mut()[offset..offset + nb + 8];
        r[..nb].copy_from_slice(&self.centroid);
        r[nb..nb + 2].copy_from_slice(&self.radius.to_ne_bytes());
        r[nb + 2..nb + 4].fill(0);
        r[nb + 4..nb + 8].copy_from_slice(&self.tail.to_ne_bytes());
    }

    /// Only the fields inserts and VACUUM change (the centroid is fixed at build).
    pub fn write_radius_tail(
        meta: &Meta,
        dir_page: &mut Page,
        offset: usize,
        radius: u16,
        tail: u32,
    ) {
        let nb = meta.code_bytes as usize;
        let r = &mut dir_page.contents_mut()[offset..offset + nb + 8];
        r[nb..nb + 2].copy_from_slice(&radius.to_ne_bytes());
        r[nb + 4..nb + 8].copy_from_slice(&tail.to_ne_bytes());
    }
}

/// Initialises an empty directory page (all records zero) with room for `records` records.
pub fn init_dir_page(meta: &Meta, page: &mut Page, records: usize) {
    page.init(0);
    page.set_lower(HEADER_SIZE + records * meta.record_size as usize);
}

/// A data page's special space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOpaque {
    pub prev: u32,
    pub flags: u16,
    pub deleted_xid: u64,
}

impl DataOpaque {
    pub fn read(page: &Page) -> DataOpaque {
        let s = page.special();
        DataOpaque {
            prev: u32::from_ne_bytes(s[0..4].try_into().unwrap()),
            flags: u16::from_ne_bytes([s[4], s[5]]),
            deleted_xid: u64::from_ne_bytes(s[8..16].try_into().unwrap()),
        }
    }

    pub fn write(&self, page: &mut Page) {
        let s = page.special_mut();
        s[0..4].copy_from_slice(&self.prev.to_ne_bytes());
        s[4..6].copy_from_slice(&self.flags.to_ne_bytes());
        s[6..8].copy_from_slice(&PAGE_ID.to_ne_bytes());
        s[8..16].copy_from_slice(&self.deleted_xid.to_ne_bytes());
    }

    /// Whether `page` looks like one of our data pages.
    pub fn is_data_page(page: &Page) -> bool {
        !page.is_new()
            && page.special().len() == DATA_SPECIAL_SIZE
            && u16::from_ne_bytes([page.special()[6], page.special()[7]]) == PAGE_ID
    }
}

/// Initialises an empty data page whose next older page is `prev`.
pub fn init_data_page(page: &mut Page, prev: u32) {
    page.init(DATA_SPECIAL_SIZE);
    DataOpaque {
        prev,
        flags: 0,
        deleted_xid: 0,
    }
    .write(page);
}

/// Entry codec: `ntids u16 | code | tids`.
pub mod entry {
    use super::Tid;

    pub fn size(code_bytes: usize, ntids: usize) -> usize {
        2 + code_bytes + ntids * Tid::SIZE
    }

    /// Most TIDs one entry can hold on an empty data page.
    pub fn max_tids(code_bytes: usize) -> usize {
        (crate::page::Page::max_item_size(super::DATA_SPECIAL_SIZE) - 2 - code_bytes) / Tid::SIZE
    }

    pub fn encode(code: &[u8], tids: &[Tid]) -> Vec<u8> {
        let mut out = Vec::with_capacity(size(code.len(), tids.len()));
        out.extend_from_slice(&(tids.len() as u16).to_ne_bytes());
        out.extend_from_slice(code);
        for t in tids {
            out.extend_from_slice(&t.to_bytes());
        }
        out
    }

    pub fn ntids(body: &[u8]) -> usize {
        u16::from_ne_bytes([body[0], body[1]]) as usize
    }

    pub fn code(body: &[u8], code_bytes: usize) -> &[u8] {
        &body[2..2 + code_bytes]
    }

    pub fn tids(body: &[u8], code_bytes: usize) -> impl Iterator<Item = Tid> + '_ {
        body[2 + code_bytes..]
            .chunks_exact(Tid::SIZE)
            .map(Tid::from_bytes)
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
        init_dir_page(&big, &mut d, big.records_per_page as usize);
        assert!(d.lower() <= d.upper());
    }

    #[test]
    fn records_and_entries() {
        let m = Meta::new(8, 3, 0);
        let mut d = Page::zeroed();
        init_dir_page(&m, &mut d, 3);
        let r = ListRecord {
            centroid: vec![1, 2, 3, 4, 5, 6, 7, 8],
            radius: 9,
            tail: 42,
        };
        r.write(&m, &mut d, 16);
        assert_eq!(ListRecord::read(&m, &d, 16), r);
        ListRecord::write_radius_tail(&m, &mut d, 16, 11, 43);
        let r2 = ListRecord::read(&m, &d, 16);
        assert_eq!(
            (r2.radius, r2.tail, &r2.centroid[..]),
            (11, 43, &r.centroid[..])
        );

        let tids = [
            Tid {
                block: 7,
                offset: 1,
            },
            Tid {
                block: 70000,
                offset: 2,
            },
        ];
        let e = entry::encode(&[0xab, 0xcd], &tids);
        assert_eq!(e.len(), entry::size(2, 2));
        assert_eq!(entry::ntids(&e), 2);
        assert_eq!(entry::code(&e, 2), &[0xab, 0xcd]);
        assert_eq!(entry::tids(&e, 2).collect::<Vec<_>>(), tids);
        let mut page = Page::zeroed();
        init_data_page(&mut page, 5);
        assert!(DataOpaque::is_data_page(&page));
        assert_eq!(DataOpaque::read(&page).prev, 5);
        let full = entry::encode(
            &[0; 8],
            &vec![
                Tid {
                    block: 1,
                    offset: 1
                };
                entry::max_tids(8)
            ],
        );
        assert!(page.add_item(&full));
    }
}
