//! PostgreSQL's standard page layout, in pure Rust, so the index algorithm runs unchanged on
//! shared buffers (through pgrx) and on in-memory pages (in unit tests).
//!
//! ```text
//!  0                 24                pd_lower        pd_upper          pd_special     8192
//!  +-----------------+------------------+---------------+-----------------+--------------+
//!  | PageHeaderData  | ItemIdData[]  -> |     free      | <- item bodies  | special space|
//!  +-----------------+------------------+---------------+-----------------+--------------+
//! ```
//! PageHeaderData: pd_lsn u64, pd_checksum u16, pd_flags u16, pd_lower u16, pd_upper u16,
//! pd_special u16, pd_pagesize_version u16, pd_prune_xid u32 (24 bytes).
//! ItemIdData (u32): lp_off (15 bits) | lp_flags (2 bits) << 15 | lp_len (15 bits) << 17.
//!
//! Pages with a fixed structure (metapage, directory) keep it right after the header and set
//! pd_lower past it, so Generic WAL (which skips the hole between pd_lower and pd_upper) logs it.
//! The LSN and checksum belong to PostgreSQL: nothing here touches them.

/// BLCKSZ: PostgreSQL's default block size, which ics_hash requires.
pub const PAGE_SIZE: usize = 8192;
/// sizeof(PageHeaderData).
pub const HEADER_SIZE: usize = 24;
/// sizeof(ItemIdData).
pub const ITEM_ID_SIZE: usize = 4;
/// PG_PAGE_LAYOUT_VERSION.
const LAYOUT_VERSION: u16 = 4;
/// MAXIMUM_ALIGNOF on the platforms PostgreSQL supports for us (x86-64, aarch64).
pub const MAXALIGN: usize = 8;
const LP_NORMAL: u32 = 1;

const OFF_LOWER: usize = 12;
const OFF_UPPER: usize = 14;
const OFF_SPECIAL: usize = 16;
const OFF_SIZE_VERSION: usize = 18;
const OFF_PRUNE_XID: usize = 20;

pub const fn maxalign(n: usize) -> usize {
    (n + MAXALIGN - 1) & !(MAXALIGN - 1)
}

/// One page. Aligned like a shared buffer, so a buffer's page can be viewed as one.
#[repr(C, align(8))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    /// A zeroed page (PostgreSQL's "new" page; `is_new()` is true).
    pub fn zeroed() -> Box<Page> {
        Box::new(Page([0; PAGE_SIZE]))
    }

    fn u16_at(&self, off: usize) -> u16 {
        u16::from_ne_bytes([self.0[off], self.0[off + 1]])
    }

    fn set_u16_at(&mut self, off: usize, v: u16) {
        self.0[off..off + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// PageInit: an empty page with `special_size` bytes of special space (MAXALIGNed).
    pub fn init(&mut self, special_size: usize) {
        self.0.fill(0);
        let special = PAGE_SIZE - maxalign(special_size);
        self.set_u16_at(OFF_LOWER, HEADER_SIZE as u16);
        self.set_u16_at(OFF_UPPER, special as u16);
        self.set_u16_at(OFF_SPECIAL, special as u16);
        self.set_u16_at(OFF_SIZE_VERSION, PAGE_SIZE as u16 | LAYOUT_VERSION);
    }

    /// The header's `pd_prune_xid` word. PostgreSQL uses it on heap pages only; an index page
    /// may use it as a mark that no row data can forge (contents start after the header).
    pub fn prune_xid(&self) -> u32 {
        u32::from_ne_bytes(
            self.0[OFF_PRUNE_XID..OFF_PRUNE_XID + 4]
                .try_into()
                .expect("4 bytes"),
        )
    }

    pub fn set_prune_xid(&mut self, v: u32) {
        self.0[OFF_PRUNE_XID..OFF_PRUNE_XID + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// PageIsNew: never initialised (all-zero header), e.g. a block extended but not written.
    pub fn is_new(&self) -> bool {
        self.upper() == 0
    }

    pub fn lower(&self) -> usize {
        self.u16_at(OFF_LOWER) as usize
    }

    pub fn upper(&self) -> usize {
        self.u16_at(OFF_UPPER) as usize
    }

    pub fn special_offset(&self) -> usize {
        self.u16_at(OFF_SPECIAL) as usize
    }

    /// Sets pd_lower (for pages whose fixed contents follow the header).
    pub fn set_lower(&mut self, lower: usize) {
        debug_assert!(lower <= self.upper());
        self.set_u16_at(OFF_LOWER, lower as u16);
    }

    /// The bytes between the header and pd_special, for pages with fixed contents. A
    /// pd_special outside the page (a corrupt header) gives what lies within it, so a reader
    /// that checks lengths never slices past the page.
    pub fn contents(&self) -> &[u8] {
        &self.0[HEADER_SIZE..self.special_offset().clamp(HEADER_SIZE, PAGE_SIZE)]
    }

    pub fn contents_mut(&mut self) -> &mut [u8] {
        let end = self.special_offset();
        &mut self.0[HEADER_SIZE..end]
    }

    /// The special space (empty when pd_special lies beyond the page: a corrupt header).
    pub fn special(&self) -> &[u8] {
        &self.0[self.special_offset().min(PAGE_SIZE)..]
    }

    pub fn special_mut(&mut self) -> &mut [u8] {
        let start = self.special_offset();
        &mut self.0[start..]
    }

    /// Number of line pointers (PageGetMaxOffsetNumber).
    pub fn item_count(&self) -> usize {
        self.lower().saturating_sub(HEADER_SIZE) / ITEM_ID_SIZE
    }

    fn item_id(&self, i: usize) -> (usize, usize) {
        let off = HEADER_SIZE + i * ITEM_ID_SIZE;
        let raw = u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap());
        ((raw & 0x7fff) as usize, (raw >> 17) as usize)
    }

    fn set_item_id(&mut self, i: usize, offset: usize, len: usize) {
        let raw = (offset as u32) | (LP_NORMAL << 15) | ((len as u32) << 17);
        let off = HEADER_SIZE + i * ITEM_ID_SIZE;
        self.0[off..off + 4].copy_from_slice(&raw.to_ne_bytes());
    }

    /// Checks what [`Page::item`] and [`Page::free_space`] trust on a page read from disk:
    /// the header's offsets in order and every line pointer within the item area. `Err`:
    /// (what is wrong, what was expected, what was found).
    pub fn check_items(&self) -> Result<(), (&'static str, String, String)> {
        let (lower, upper, special) = (self.lower(), self.upper(), self.special_offset());
        if !(HEADER_SIZE <= lower && lower <= upper && upper <= special && special <= PAGE_SIZE) {
            return Err((
                "the page header's pd_lower, pd_upper, pd_special",
                format!("{HEADER_SIZE} <= pd_lower <= pd_upper <= pd_special <= {PAGE_SIZE}"),
                format!("{lower}, {upper}, {special}"),
            ));
        }
        for i in 0..self.item_count() {
            let (off, len) = self.item_id(i);
            if off < upper || off + len > special {
                return Err((
                    "a line pointer",
                    format!("an item within bytes {upper}..{special}"),
                    format!("item {} at {off} of {len} bytes", i + 1),
                ));
            }
        }
        Ok(())
    }

    /// The body of item `i` (0-based; PostgreSQL's offset number is i + 1).
    pub fn item(&self, i: usize) -> &[u8] {
        let (off, len) = self.item_id(i);
        &self.0[off..off + len]
    }

    /// PageGetFreeSpace: room for one more item body, after its line pointer.
    pub fn free_space(&self) -> usize {
        (self.upper() - self.lower()).saturating_sub(ITEM_ID_SIZE)
    }

    /// The largest item body that fits on an empty page with `special_size` special space.
    pub const fn max_item_size(special_size: usize) -> usize {
        (PAGE_SIZE - HEADER_SIZE - maxalign(special_size) - ITEM_ID_SIZE) & !(MAXALIGN - 1)
    }

    /// Appends an item; `false` (page unchanged) when it does not fit.
    pub fn add_item(&mut self, body: &[u8]) -> bool {
        let size = maxalign(body.len());
        if self.free_space() < size {
            return false;
        }
        let upper = self.upper() - size;
        let i = self.item_count();
        self.0[upper..upper + body.len()].copy_from_slice(body);
        self.0[upper + body.len()..upper + size].fill(0);
        self.set_item_id(i, upper, body.len());
        self.set_u16_at(OFF_LOWER, (self.lower() + ITEM_ID_SIZE) as u16);
        self.set_u16_at(OFF_UPPER, upper as u16);
        true
    }

    /// Replaces item `i`'s body; `false` (page unchanged) when the new body does not fit.
    pub fn replace_item(&mut self, i: usize, body: &[u8]) -> bool {
        let (off, len) = self.item_id(i);
        if maxalign(len) == maxalign(body.len()) {
            self.0[off..off + body.len()].copy_from_slice(body);
            self.0[off + body.len()..off + maxalign(len)].fill(0);
            self.set_item_id(i, off, body.len());
            return true;
        }
        let grows = maxalign(body.len()).saturating_sub(maxalign(len));
        if grows > self.upper() - self.lower() {
            return false;
        }
        self.rewrite(|j, old, out| out.push(if j == i { body.to_vec() } else { old.to_vec() }));
        true
    }

    /// Keeps only the items for which `keep(i, body)` is true, compacting the page
    /// (PageIndexMultiDelete: later items move down, so item numbers change).
    pub fn retain_items(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        self.rewrite(|j, old, out| {
            if keep(j, old) {
                out.push(old.to_vec());
            }
        });
    }

    /// Rebuilds the item area from `f`'s output, keeping header fields and special space.
    fn rewrite(&mut self, mut f: impl FnMut(usize, &[u8], &mut Vec<Vec<u8>>)) {
        let mut bodies = Vec::with_capacity(self.item_count());
        for j in 0..self.item_count() {
            f(j, self.item(j), &mut bodies);
        }
        let special = self.special_offset();
        self.0[HEADER_SIZE..special].fill(0);
        self.set_u16_at(OFF_LOWER, HEADER_SIZE as u16);
        self.set_u16_at(OFF_UPPER, special as u16);
        for body in &bodies {
            let added = self.add_item(body);
            assert!(added, "rewritten items always fit where they fitted before");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_matches_page_init() {
        let mut p = Page::zeroed();
        assert!(p.is_new());
        p.init(12);
        assert!(!p.is_new());
        assert_eq!(p.lower(), 24);
        assert_eq!(p.upper(), 8192 - 16);
        assert_eq!(p.special_offset(), 8192 - 16);
        assert_eq!(p.special().len(), 16);
        assert_eq!(u16::from_ne_bytes([p.0[18], p.0[19]]), 8192 | 4);
        assert_eq!(p.item_count(), 0);
        assert_eq!(p.free_space(), 8192 - 16 - 24 - 4);
    }

    #[test]
    fn items_add_replace_retain() {
        let mut p = Page::zeroed();
        p.init(16);
        assert!(p.add_item(b"hello"));
        assert!(p.add_item(b"world!!!!"));
        assert_eq!(p.item_count(), 2);
        assert_eq!(p.item(0), b"hello");
        assert_eq!(p.item(1), b"world!!!!");
        // Same aligned size: in place. Larger: rewritten.
        assert!(p.replace_item(0, b"HELLO!"));
        assert_eq!(p.item(0), b"HELLO!");
        assert!(p.replace_item(0, b"a much longer body than before"));
        assert_eq!(p.item(0), b"a much longer body than before");
        assert_eq!(p.item(1), b"world!!!!");
        p.retain_items(|i, _| i != 0);
        assert_eq!(p.item_count(), 1);
        assert_eq!(p.item(0), b"world!!!!");
        assert_eq!(p.special().len(), 16);
    }

    #[test]
    fn fills_exactly_and_refuses_overflow() {
        let mut p = Page::zeroed();
        p.init(16);
        let max = Page::max_item_size(16);
        assert!(!p.add_item(&vec![1; max + 1]));
        assert!(p.add_item(&vec![1; max]));
        assert!(!p.add_item(b"x"));
        let mut q = Page::zeroed();
        q.init(16);
        let mut n = 0;
        while q.add_item(&[7; 14]) {
            n += 1;
        }
        // (8192 - 24 - 16) / (16 + 4) items of 14 bytes (MAXALIGNed to 16).
        assert_eq!(n, (8192 - 24 - 16) / 20);
        assert!(q.free_space() < 16);
        assert!(!q.replace_item(0, &[7; 30]));
        assert_eq!(q.item(0), &[7; 14]);
    }
}
