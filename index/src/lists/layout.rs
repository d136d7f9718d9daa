//! The lists strategy's pages (see the diagram in [`crate::lists`]).
//!
//! ```text
//! blocks 1..=D     directory: header | ListRecord x per_page        (pd_lower past the records)
//! other blocks     data pages, one chain per list, newest (tail) first:
//!                  header | ItemId[] | ... free ... | entries | DataOpaque (special, 16 bytes)
//! ```
//!
//! ListRecord (code_bytes + 8 bytes): centroid [code_bytes] | radius u16 | flags u16 | tail u32.
//!   Every code in the list is within `radius` of `centroid` (a covering radius: it only grows,
//!   except when VACUUM recomputes it), which is what lets a search skip the list exactly.
//!   `tail` is the list's newest data page (InvalidBlockNumber when the list is empty).
//!
//! Entry (a data page item): ntids u16 | code [code_bytes] | tids [ntids x 6 bytes].
//!   One entry per distinct code per page (a posting list); learned codes repeat a lot.

use crate::format::{DataOpaque, FormatError, Meta, DATA_SPECIAL_SIZE};
use crate::page::{Page, HEADER_SIZE, PAGE_SIZE};
use zerocopy::byteorder::native_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A list's directory record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    pub centroid: Vec<u8>,
    pub radius: u16,
    pub tail: u32,
}

/// What follows the centroid in a directory record, as stored (unaligned: the centroid's
/// length is any number of bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct RecordTrailer {
    radius: U16,
    flags: U16,
    tail: U32,
}

const TRAILER_SIZE: usize = std::mem::size_of::<RecordTrailer>();

impl ListRecord {
    /// The record at `offset` of directory page `block`, once the page's header says the
    /// records fill it (a directory page has no special space; the metapage, already checked,
    /// says where the records lie).
    pub fn read(
        meta: &Meta,
        dir_page: &Page,
        block: u32,
        offset: usize,
    ) -> Result<ListRecord, FormatError> {
        if dir_page.special_offset() != PAGE_SIZE {
            return Err(FormatError::BadField {
                block,
                field: "the directory page's pd_special",
                expected: PAGE_SIZE.to_string(),
                found: dir_page.special_offset().to_string(),
            });
        }
        let nb = meta.code_bytes as usize;
        let r = &dir_page.contents()[offset..offset + nb + TRAILER_SIZE];
        let t = RecordTrailer::read_from_bytes(&r[nb..])
            .expect("internal invariant: a trailer is TRAILER_SIZE bytes");
        Ok(ListRecord {
            centroid: r[..nb].to_vec(),
            radius: t.radius.get(),
            tail: t.tail.get(),
        })
    }

    pub fn write(&self, meta: &Meta, dir_page: &mut Page, offset: usize) {
        let nb = meta.code_bytes as usize;
        let r = &mut dir_page.contents_mut()[offset..offset + nb];
        r.copy_from_slice(&self.centroid);
        Self::write_radius_tail(meta, dir_page, offset, self.radius, self.tail);
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
        let t = RecordTrailer {
            radius: radius.into(),
            flags: 0.into(),
            tail: tail.into(),
        };
        dir_page.contents_mut()[offset + nb..offset + nb + TRAILER_SIZE]
            .copy_from_slice(t.as_bytes());
    }
}

/// The special space of list data page `block` (codes of `code_bytes`), once the page is
/// checked to be one whose entries can be read: a list page, line pointers within the page,
/// each entry as long as its TID count says.
pub fn check_data_page(
    page: &Page,
    block: u32,
    code_bytes: usize,
) -> Result<DataOpaque, FormatError> {
    if !DataOpaque::is_data_page(page) {
        return Err(FormatError::NotDataPage { block });
    }
    let bad = |field, expected, found| FormatError::BadField {
        block,
        field,
        expected,
        found,
    };
    page.check_items()
        .map_err(|(field, expected, found)| bad(field, expected, found))?;
    for i in 0..page.item_count() {
        let body = page.item(i);
        let n = if body.len() >= 2 {
            entry::ntids(body)
        } else {
            0
        };
        if n == 0 || body.len() != entry::size(code_bytes, n) {
            return Err(bad(
                "an entry's length",
                format!("2 + {code_bytes} + 6 x its TID count ({n}), at least one TID"),
                format!("{} bytes (item {})", body.len(), i + 1),
            ));
        }
    }
    Ok(DataOpaque::read(page))
}

/// Initialises an empty directory page (all records zero) with room for `records` records.
pub fn init_dir_page(meta: &Meta, page: &mut Page, records: usize) {
    page.init(0);
    page.set_lower(HEADER_SIZE + records * meta.record_size as usize);
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
    use crate::format::Tid;

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
    use crate::format::Tid;

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
        assert_eq!(ListRecord::read(&m, &d, 1, 16).unwrap(), r);
        ListRecord::write_radius_tail(&m, &mut d, 16, 11, 43);
        let r2 = ListRecord::read(&m, &d, 1, 16).unwrap();
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
