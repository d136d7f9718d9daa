//! The encoder against a real ONNX Runtime (installed by scripts/setup.sh, or $ORT_DYLIB_PATH):
//! codes, refused external data, the memory limit (measured through the counting allocator),
//! batches planned within it, cancellation of a long run, the session cache's bounds.
//!
//! The allocator's limit is process-wide, so the tests take one lock and run one at a time.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ics_encoder::batch::{encode_images, BatchOptions};
use ics_encoder::cache::SessionCache;
use ics_encoder::memory;
use ics_encoder::operators::OperatorPolicy;
use ics_encoder::runtime::{self, Candidate, CudaOptions, LibraryChoice, ProviderSetting, Runtime};
use ics_encoder::session::{self, EncoderSession, SessionOptions};
use ics_encoder::test_models;
use ics_encoder::{Cause, ErrorKind};

static SERIAL: Mutex<()> = Mutex::new(());

/// Where scripts/setup.sh installs ONNX Runtime; `$ORT_DYLIB_PATH` first.
const INSTALLED: &str = "/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";

fn rt() -> &'static Runtime {
    let choice = LibraryChoice::resolve(&[
        Candidate::Env(runtime::LIBRARY_ENV),
        Candidate::Installed {
            path: INSTALLED,
            source: "default",
        },
    ]);
    runtime::load(&choice, "ics-encoder tests").expect("ONNX Runtime")
}

fn opts(memory_limit: usize) -> SessionOptions {
    SessionOptions {
        provider: ProviderSetting::Cpu,
        provider_setting_name: "provider",
        threads: 1,
        memory_limit,
    }
}

fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 7 + seed) % 256) as u8,
            ((y * 11 + seed * 3) % 256) as u8,
            ((x + y + seed) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn status_kb(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

fn peak_rss() -> usize {
    status_kb("VmHWM:")
}

/// Resets the process's peak resident size to its current one (Linux clear_refs 5) and
/// returns it; None where the kernel does not allow it.
fn reset_peak_rss() -> Option<usize> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    Some(status_kb("VmRSS:").max(peak_rss()))
}

#[test]
fn features_give_the_codes_the_weights_say() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = EncoderSession::build(rt(), &test_models::features_model(), opts(usize::MAX))
        .expect("session");
    assert_eq!((s.bits(), s.item_len()), (8, 4));
    let codes = s
        .run(&[1.0, -1.0, 2.0, -0.5, -3.0, 0.25, 0.0, -1.0], 2, None)
        .unwrap();
    // Bits 0-3: x >= 0 (tanh(0) = 0 packs as 1); bits 4-7: -x >= 0.
    assert_eq!(codes, vec![0b1010_0101, 0b0110_1011]);
    assert!(s.profile.resident > 0, "{:?}", s.profile);
}

#[test]
fn a_refused_cuda_session_runs_on_the_cpu_under_auto_and_fails_under_cuda() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let refused = CudaOptions {
        refused: Some("every slot is taken".into()),
        memory_limit: 1 << 30,
    };
    let with = |provider| SessionOptions {
        provider,
        ..opts(usize::MAX)
    };
    let model = test_models::features_model();
    let s = EncoderSession::build_with(rt(), &model, with(ProviderSetting::Auto), &refused)
        .expect("auto falls back to the CPU");
    assert_eq!(s.provider, runtime::CPU_PROVIDER);
    assert_eq!(s.provider_reason, "auto: every slot is taken");
    assert_eq!(s.device_memory_limit, None);
    assert!(
        s.device_memory().is_none(),
        "a CPU session has no device arena"
    );
    let e = EncoderSession::build_with(rt(), &model, with(ProviderSetting::Cuda), &refused)
        .err()
        .expect("cuda refused is an error");
    assert_eq!(e.kind, ErrorKind::Busy);
    assert_eq!(e.message, "provider is cuda, but every slot is taken");
    // cpu never asks.
    let s = EncoderSession::build_with(rt(), &model, with(ProviderSetting::Cpu), &refused)
        .expect("cpu");
    assert_eq!(s.provider_reason, "provider = cpu");
}

#[test]
fn models_with_external_data_are_refused_before_onnx_runtime_sees_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A file that exists where ONNX Runtime would look (the working directory).
    let dir = std::env::temp_dir().join(format!("ics-encoder-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("weights.bin"), vec![0u8; 4096]).unwrap();
    let path = dir.join("weights.bin");
    let bytes = test_models::external_data_model(path.to_str().unwrap());
    let err = EncoderSession::build(rt(), &bytes, opts(usize::MAX))
        .err()
        .expect("refused");
    assert_eq!(err.kind, ErrorKind::NotSupported, "{err}");
    assert!(err.message.contains("external data"), "{err}");
    assert!(err.message.contains("weights.bin"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_memory_limit_is_measured_and_enforced() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = test_models::wide_image_model(64);
    // Weights over the limit: the session is refused with an error, the process goes on.
    let held = memory::stats().live;
    let err = EncoderSession::build(rt(), &model, opts(held + 4096))
        .err()
        .expect("refused");
    assert_eq!(err.kind, ErrorKind::OutOfMemory, "{err}");
    assert_eq!(memory::stats().live, held);
    let mut s = EncoderSession::build(rt(), &model, opts(usize::MAX)).expect("session");
    let p = s.profile;
    // 64 channels x 64 x 64 floats = 1 MB of activations per image, at least.
    assert!(p.run_per_item >= 1 << 20, "{p:?}");
    assert!(p.run_bytes(64) >= 64 << 20, "{p:?}");

    // A limit that leaves room for a few images: a run of 64 at once passes it, is stopped
    // and reported as out of memory, without the process's resident memory growing by the
    // run's size (measured: peak RSS reset, then read), and nothing stays allocated.
    let held = memory::stats().live;
    let limit = held + p.run_bytes(4);
    memory::set_limit(limit);
    let input = vec![0.1f32; 64 * s.item_len()];
    let rss_before = reset_peak_rss();
    // With intra-op threads too (the refusal may happen on a pool thread).
    let mut threaded = EncoderSession::build(
        rt(),
        &model,
        SessionOptions {
            threads: 2,
            ..opts(usize::MAX)
        },
    )
    .expect("session");
    memory::set_limit(memory::stats().live + p.run_bytes(4));
    let err = threaded.run(&input, 64, None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfMemory, "{err}");
    drop(threaded);
    memory::set_limit(limit);
    let err = s.run(&input, 64, None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfMemory, "{err}");
    assert_eq!(memory::stats().live, held);
    if let Some(before) = rss_before {
        let grew = peak_rss().saturating_sub(before);
        assert!(
            grew < p.run_bytes(64) / 4,
            "resident memory grew by {grew} bytes for a stopped run of {} bytes",
            p.run_bytes(64)
        );
    }

    // The batch path plans chunks that fit the same limit: all 64 images are encoded, the
    // peak stays under the limit, and the codes equal those of one unlimited run.
    let images: Vec<Vec<u8>> = (0..64).map(|i| png(64, 64, i)).collect();
    let refs: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
    let batch = |limit: usize, s: &mut EncoderSession| {
        memory::reset_peak();
        let codes = encode_images(
            s,
            &refs,
            &BatchOptions {
                batch_size: 4096,
                threads: 2,
                max_pixels: 1 << 20,
                memory_limit: limit,
                interrupt: None,
            },
        );
        (codes, memory::stats().peak)
    };
    let our_buffers = 8 * s.item_len() * 4 + 8 * 64 * 64 * 9;
    let (limited, peak) = batch(limit + our_buffers, &mut s);
    let limited = limited.expect("encoded within the limit");
    assert!(peak <= limit + our_buffers, "peak {peak} > limit {limit}");
    let runs_limited = s.runs;
    let (unlimited, _) = batch(usize::MAX, &mut s);
    assert_eq!(limited, unlimited.unwrap());
    assert!(s.runs - runs_limited == 1, "one run without a limit");
    assert!(
        runs_limited >= 8,
        "{runs_limited} runs for 64 images of ~4 per run"
    );

    // One image that cannot fit: an error naming it, before anything is decoded.
    let err = encode_images(
        &mut s,
        &refs,
        &BatchOptions {
            batch_size: 32,
            threads: 1,
            max_pixels: 1 << 20,
            memory_limit: held + (1 << 20),
            interrupt: None,
        },
    )
    .unwrap_err();
    assert_eq!(err.index, Some(0));
    assert_eq!(err.error.kind, ErrorKind::OutOfMemory, "{}", err.error);
    memory::set_limit(usize::MAX);
}

static STOP: AtomicBool = AtomicBool::new(false);

fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

#[test]
fn a_long_run_stops_when_interrupted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Its Loop is off the operator list: allowed explicitly.
    let mut s = EncoderSession::build_checked(
        rt(),
        &test_models::slow_features_model(),
        opts(usize::MAX),
        &CudaOptions::default(),
        &OperatorPolicy::with_extra("Loop"),
    )
    .expect("session");
    assert_eq!(s.operators_beyond_list, vec!["Loop".to_string()]);
    // A short run: the slow model's codes are the features model's.
    let codes = s.run(&[200.0, -1.0, 2.0, -0.5], 1, None).unwrap();
    assert_eq!(codes, vec![0b1010_0101]);
    // 10^9 iterations would take hours; the interrupt comes after 300 ms.
    STOP.store(false, Ordering::Relaxed);
    let timer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        STOP.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let err = s
        .run(&[1e9, 0.0, 0.0, 0.0], 1, Some(stop_requested))
        .unwrap_err();
    let took = started.elapsed();
    timer.join().unwrap();
    assert_eq!(err.kind, ErrorKind::Interrupted, "{err}");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    // The session is still good.
    STOP.store(false, Ordering::Relaxed);
    assert_eq!(
        s.run(&[3.0, -1.0, 2.0, -0.5], 1, Some(stop_requested))
            .unwrap(),
        vec![0b1010_0101]
    );
    // Interrupted before it starts: never runs.
    STOP.store(true, Ordering::Relaxed);
    let err = s
        .run(&[1e9, 0.0, 0.0, 0.0], 1, Some(stop_requested))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Interrupted);
    STOP.store(false, Ordering::Relaxed);
}

#[test]
fn decoding_a_batch_stops_when_interrupted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = EncoderSession::build(rt(), &test_models::wide_image_model(64), opts(usize::MAX))
        .expect("session");
    let images: Vec<Vec<u8>> = (0..8).map(|i| png(64, 64, i)).collect();
    let refs: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
    STOP.store(true, Ordering::Relaxed);
    let err = encode_images(
        &mut s,
        &refs,
        &BatchOptions {
            batch_size: 4,
            threads: 2,
            max_pixels: 1 << 20,
            memory_limit: usize::MAX,
            interrupt: Some(stop_requested),
        },
    )
    .unwrap_err();
    STOP.store(false, Ordering::Relaxed);
    assert_eq!(err.error.kind, ErrorKind::Interrupted);
    assert_eq!(err.index, None);
    assert_eq!(s.runs, 0);
}

#[test]
fn the_cache_keeps_one_session_per_model_and_setting_within_its_bounds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cache = SessionCache::new();
    let build = |threads: usize| {
        EncoderSession::build(
            rt(),
            &test_models::features_model(),
            SessionOptions {
                threads,
                ..opts(usize::MAX)
            },
        )
        .unwrap()
    };
    // Sixteen thread counts for one model: one session at a time, the newest.
    for threads in 1..=16 {
        if cache.get("aa", ProviderSetting::Cpu, threads).is_none() {
            cache.insert("aa", "a", build(threads), 64, usize::MAX);
        }
        assert_eq!(cache.len(), 1);
    }
    assert!(cache.get("aa", ProviderSetting::Cpu, 16).is_some());
    assert!(cache.get("aa", ProviderSetting::Cpu, 1).is_none());
    // Other models: bounded by count, least recently used out.
    cache.insert("bb", "b", build(1), 2, usize::MAX);
    cache.get("aa", ProviderSetting::Cpu, 16);
    cache.insert("cc", "c", build(1), 2, usize::MAX);
    let names: Vec<&str> = cache.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["c", "a"]);
    // And by memory: half the limit for cached sessions, the newest always kept.
    let one = cache.entries()[0].session.profile.resident;
    cache.insert("dd", "d", build(1), 64, 3 * one);
    assert_eq!(cache.len(), 1, "{one} bytes each, {} limit", 3 * one);
    cache.evict("dd");
    assert!(cache.is_empty());
}

/// Bytes that are valid ONNX and carry ONNX Runtime's own format marker: the encoder's session
/// refuses them, and a session built from them directly (the trainer's path for backbones)
/// reads the ONNX graph, because the format is forced rather than guessed.
#[test]
fn ort_format_bytes_are_read_as_onnx_or_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_limit(usize::MAX);
    let bytes = test_models::ort_format_features_model();
    assert_eq!(&bytes[4..8], b"ORTM");
    let err = EncoderSession::build(rt(), &bytes, opts(usize::MAX))
        .err()
        .expect("refused");
    assert_eq!(err.kind, ErrorKind::InvalidBinary, "{err}");
    assert!(err.message.contains("ORTM"), "{err}");
    let built = runtime::build_session(rt(), &bytes, 1, ProviderSetting::Cpu, "provider")
        .expect("parsed as ONNX, not as an ORT-format model");
    let names: Vec<&str> = built.session.inputs().iter().map(|i| i.name()).collect();
    assert_eq!(names, vec!["features"]);
}

/// Models with an operator a run cannot be stopped inside are refused before ONNX Runtime
/// builds anything, unless the policy names the operator.
#[test]
fn unstoppable_operators_are_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_limit(usize::MAX);
    for (model, op) in [
        (test_models::nms_features_model(), "NonMaxSuppression"),
        (test_models::runtime_matmul_features_model(), "MatMul"),
        (test_models::slow_features_model(), "Loop"),
    ] {
        let err = EncoderSession::build(rt(), &model, opts(usize::MAX))
            .err()
            .unwrap_or_else(|| panic!("{op}: accepted"));
        assert_eq!(err.kind, ErrorKind::NotSupported, "{op}: {err}");
        assert!(err.message.contains(op), "{op}: {err}");
        assert!(
            matches!(&*err.cause, Cause::Operator(r) if r.op == op),
            "{op}: {:?}",
            err.cause
        );
        let mut s = EncoderSession::build_checked(
            rt(),
            &model,
            opts(usize::MAX),
            &CudaOptions::default(),
            &OperatorPolicy::with_extra(op),
        )
        .unwrap_or_else(|e| panic!("{op} allowed: {e}"));
        assert_eq!(
            s.run(&[3.0, -1.0, 2.0, -0.5], 1, None).unwrap(),
            vec![0b1010_0101],
            "{op}"
        );
    }
}

#[test]
fn runs_are_capped_in_items_with_the_same_codes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_limit(usize::MAX);
    let mut s = EncoderSession::build(rt(), &test_models::features_model(), opts(usize::MAX))
        .expect("session");
    // A tiny model: its measured cap is far above any batch.
    assert!(s.max_items_per_run > 10_000, "{}", s.max_items_per_run);
    let features: Vec<f32> = (0..40).map(|i| ((i * 7 % 11) as f32) - 5.5).collect();
    let whole = s.run(&features, 10, None).unwrap();
    assert_eq!(s.runs, 1);
    s.max_items_per_run = 3;
    s.runs = 0;
    let split = s.run(&features, 10, None).unwrap();
    assert_eq!(s.runs, 4, "10 items in runs of at most 3");
    assert_eq!(split, whole);
}

#[test]
fn a_heavy_node_stops_within_its_capped_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_limit(usize::MAX);
    // 3·32²·4096 multiply-adds per image in one MatMul node.
    let mut s = EncoderSession::build(
        rt(),
        &test_models::heavy_image_model(32, 4096),
        opts(usize::MAX),
    )
    .expect("session");
    let cap = s.max_items_per_run;
    assert!(
        cap as f64 * s.seconds_per_item <= session::RUN_SECONDS,
        "cap {cap} at {} s per item",
        s.seconds_per_item
    );
    // A batch of 4096 images (ics_hash.batch_size's most) takes seconds in that node.
    let n = 4096;
    let input = vec![0.1f32; n * s.item_len()];
    STOP.store(false, Ordering::Relaxed);
    let timer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        STOP.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let err = s.run(&input, n, Some(stop_requested)).unwrap_err();
    let took = started.elapsed();
    timer.join().unwrap();
    STOP.store(false, Ordering::Relaxed);
    assert_eq!(err.kind, ErrorKind::Interrupted, "{err}");
    assert!(
        took < Duration::from_millis(1500),
        "{n} items (cap {cap}) stopped after {took:?}"
    );
}
