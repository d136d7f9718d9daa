//! `ics_index::spill::Spill` over PostgreSQL's temporary files (`BufFile`): the index build's
//! and VACUUM's sorts spill here when they outgrow their memory. Temporary files live in
//! `temp_tablespaces`, count against `temp_file_limit`, write no WAL, and are removed when
//! the transaction ends, also when it fails.

use ics_index::spill::{Spill, SpillFile};
use pgrx::pg_sys;

pub struct PgSpill;

pub struct PgFile {
    file: *mut pg_sys::BufFile,
}

impl Spill for PgSpill {
    type File = PgFile;

    fn create(&self) -> PgFile {
        // SAFETY: a temporary file owned by the current resource owner (closed at
        // transaction end if not before).
        let file = unsafe { pg_sys::BufFileCreateTemp(false) };
        PgFile { file }
    }
}

impl SpillFile for PgFile {
    fn write_all(&mut self, bytes: &[u8]) {
        // SAFETY: an open BufFile; BufFileWrite reads `bytes.len()` bytes and raises on
        // failure (disk full, temp_file_limit).
        unsafe { pg_sys::BufFileWrite(self.file, bytes.as_ptr() as *mut _, bytes.len()) }
    }

    fn rewind(&mut self) {
        // SAFETY: an open BufFile; seeking to its start always succeeds.
        let r = unsafe { pg_sys::BufFileSeek(self.file, 0, 0, libc_seek_set()) };
        assert_eq!(r, 0, "a temporary file rewinds to its start");
    }

    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: an open BufFile; at most `buf.len()` bytes are written into `buf`.
        unsafe { pg_sys::BufFileRead(self.file, buf.as_mut_ptr() as *mut _, buf.len()) }
    }
}

/// SEEK_SET, which pgrx does not export.
const fn libc_seek_set() -> i32 {
    0
}

impl Drop for PgFile {
    fn drop(&mut self) {
        // When unwinding from an error, the transaction's abort closes the file: PostgreSQL
        // must not be called mid-error.
        if !std::thread::panicking() {
            // SAFETY: an open BufFile, closed once.
            unsafe { pg_sys::BufFileClose(self.file) }
        }
    }
}

/// Memory a maintenance operation (an index build, VACUUM's merge) may use:
/// `maintenance_work_mem`.
pub fn maintenance_budget() -> usize {
    // SAFETY: reads a GUC.
    let kb = unsafe { pg_sys::maintenance_work_mem };
    kb.max(1024) as usize * 1024
}
