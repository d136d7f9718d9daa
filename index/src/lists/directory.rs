//! The list directory: each list's centroid, covering radius and newest page, read from the
//! metapage and directory pages into memory (share locks, released before any data page is
//! touched: nobody waits for a data page while holding a directory lock).

use crate::format::{FormatError, Meta, META_BLOCK};
use crate::lists::layout::ListRecord;
use crate::relation::{BlockNumber, Relation};

#[derive(Debug, Clone)]
pub struct Directory {
    pub meta: Meta,
    /// Centroids, contiguous (`code_bytes` each), in list order.
    pub centroids: Vec<u8>,
    pub radius: Vec<u16>,
    pub tails: Vec<BlockNumber>,
}

impl Directory {
    pub fn read<R: Relation>(rel: &R) -> Result<Directory, FormatError> {
        let meta = Meta::read(&rel.read(META_BLOCK))?;
        let lists = meta.lists as usize;
        let nb = meta.code_bytes as usize;
        let mut dir = Directory {
            centroids: Vec::with_capacity(lists * nb),
            radius: Vec::with_capacity(lists),
            tails: Vec::with_capacity(lists),
            meta,
        };
        let per = dir.meta.records_per_page as usize;
        for page_index in 0..dir.meta.dir_pages as usize {
            let (block, _) = dir.meta.record_location(page_index * per);
            let page = rel.read(block);
            for l in page_index * per..lists.min((page_index + 1) * per) {
                let rec = ListRecord::read(&dir.meta, &page, block, dir.meta.record_location(l).1)?;
                dir.centroids.extend_from_slice(&rec.centroid);
                dir.radius.push(rec.radius);
                dir.tails.push(rec.tail);
            }
        }
        Ok(dir)
    }

    pub fn code_bytes(&self) -> usize {
        self.meta.code_bytes as usize
    }

    pub fn lists(&self) -> usize {
        self.radius.len()
    }

    pub fn centroid(&self, l: usize) -> &[u8] {
        let nb = self.code_bytes();
        &self.centroids[l * nb..(l + 1) * nb]
    }
}
