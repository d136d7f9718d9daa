//! Temporary files for sorts that do not fit in memory. The extension implements [`Spill`]
//! over PostgreSQL's temporary files (`BufFile`: cleaned up at transaction end, counted by
//! `temp_file_limit`, no WAL); tests use [`MemSpill`].

/// A temporary file written once, then read from the start.
pub trait SpillFile {
    fn write_all(&mut self, bytes: &[u8]);
    /// Ends writing; reads start at the beginning.
    fn rewind(&mut self);
    /// Fills `buf` as far as the file goes; returns the bytes read (0 at the end).
    fn read_into(&mut self, buf: &mut [u8]) -> usize;
}

/// Makes temporary files.
pub trait Spill {
    type File: SpillFile;
    fn create(&self) -> Self::File;
}

/// Temporary "files" in memory (tests, and sorts known to be small).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemSpill;

#[derive(Debug, Default)]
pub struct MemFile {
    data: Vec<u8>,
    pos: usize,
}

impl SpillFile for MemFile {
    fn write_all(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    fn rewind(&mut self) {
        self.pos = 0;
    }

    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

impl Spill for MemSpill {
    type File = MemFile;
    fn create(&self) -> MemFile {
        MemFile::default()
    }
}
