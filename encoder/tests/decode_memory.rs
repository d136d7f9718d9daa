//! What decoding really allocates, measured by a counting global allocator, against what
//! `decode_memory_bound` promises from the header alone: the batch planner counts that bound
//! against the encoder's memory limit before anything is decoded, so a file that makes the
//! decoder allocate more than its bound gets past the limit. Crafted GIFs whose logical screen
//! or first frame declares far more pixels than the file holds, and one ordinary image of each
//! format.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use ics_encoder::decode::{decode_memory_bound, decode_rgb, DEFAULT_MAX_PIXELS};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a pointer this allocator returned, with its layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's pointer and layout, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated on top of what was live while `decode_rgb` ran (the result included;
/// whatever the call's outcome).
fn decode_peak(bytes: &[u8]) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let _ = std::hint::black_box(decode_rgb(bytes, DEFAULT_MAX_PIXELS));
    PEAK.load(Ordering::Relaxed) - base
}

/// A one-colour `w` x `h` GIF (one frame at 0,0).
fn gif(w: u32, h: u32) -> Vec<u8> {
    let frame = image::Frame::new(image::RgbaImage::from_pixel(
        w,
        h,
        image::Rgba([200, 30, 30, 255]),
    ));
    let mut out = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut out)
        .encode_frame(frame)
        .unwrap();
    out
}

/// `bytes` with the logical screen (bytes 6-9) set to `w` x `h`.
fn with_screen(mut bytes: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    bytes[6..8].copy_from_slice(&w.to_le_bytes());
    bytes[8..10].copy_from_slice(&h.to_le_bytes());
    bytes
}

fn check(what: &str, bytes: &[u8]) {
    let bound = decode_memory_bound(bytes, DEFAULT_MAX_PIXELS)
        .unwrap_or_else(|e| panic!("{what}: {e}")) as usize;
    let peak = decode_peak(bytes);
    assert!(
        peak <= bound,
        "{what} ({} bytes): decoding allocated {peak} bytes at its peak, its bound says {bound}",
        bytes.len()
    );
}

/// One test: the counters are process-wide.
#[test]
fn decoding_stays_within_the_declared_bound() {
    // The header bound of a tiny GIF declaring a 7000x7000 canvas covers the canvas.
    let huge = with_screen(gif(2, 2), 7000, 7000);
    let bound = decode_memory_bound(&huge, DEFAULT_MAX_PIXELS).unwrap();
    assert!(bound >= 7000 * 7000 * (4 + 3), "{bound}");
    // A tiny GIF whose logical screen is 3000x3000: the canvas is what the decoder fills.
    let canvas = with_screen(gif(2, 2), 3000, 3000);
    assert!(canvas.len() < 1024, "{}", canvas.len());
    check("a 2x2 frame on a 3000x3000 screen", &canvas);
    // A first frame larger than its logical screen: decoded into a buffer of its own size.
    let frame = with_screen(gif(2000, 2000), 1, 1);
    assert!(frame.len() < 64 * 1024, "{}", frame.len());
    check("a 2000x2000 frame on a 1x1 screen", &frame);
    // A frame placed far from the origin of a small screen.
    let mut offset = gif(1000, 1000);
    let desc = offset.iter().position(|&b| b == 0x2c).unwrap();
    offset[desc + 1..desc + 3].copy_from_slice(&60000u16.to_le_bytes());
    check("a frame at x = 60000", &with_screen(offset, 10, 10));
    // Ordinary images of each format.
    let rgb: Vec<u8> = (0..300 * 200 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let mut png = Vec::new();
    let mut jpeg = Vec::new();
    let mut bmp = Vec::new();
    let mut webp = Vec::new();
    let img = image::RgbImage::from_raw(300, 200, rgb).unwrap();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    img.write_to(&mut Cursor::new(&mut bmp), image::ImageFormat::Bmp)
        .unwrap();
    img.write_to(&mut Cursor::new(&mut webp), image::ImageFormat::WebP)
        .unwrap();
    for (what, bytes) in [("PNG", png), ("JPEG", jpeg), ("BMP", bmp), ("WebP", webp)] {
        check(what, &bytes);
    }
    check("GIF", &gif(300, 200));
}
