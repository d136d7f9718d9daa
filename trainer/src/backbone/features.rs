//! Backbone feature extraction: images -> preprocessing (`ics_encoder::preprocess`, in parallel
//! with rayon) -> ONNX Runtime in batches -> an (n, D) matrix, cached on disk.
//!
//! The preprocessing is the extension's own code, so features computed here are the ones
//! `ics_encode` computes at query time. The cache key covers everything the numbers depend
//! on: the backbone's ONNX bytes (sha256), the feature value's name, the preprocessing
//! description and each image's fingerprint (content for in-memory images; path, size and
//! modification time for files).
//!
//! Cache file (`features-{key}.bin`, [`CACHE_FORMAT`]): a tensor file ([`crate::tensorfile`])
//! whose description holds the whole key (hex) and whose tensor `features` is the (n, D)
//! matrix. A file of another key, format or version (such as the `ICSFEAT1` files of earlier
//! trainers) is a cache miss and is written over; a damaged one is an error.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ics_codes::code::to_hex;
use ics_encoder::decode::{RgbImage, DEFAULT_MAX_PIXELS};
use ics_encoder::preprocess::{preprocess_into, preprocess_rgb, Preprocess};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Backbone;
use crate::data::dataset::{Dataset, ImageRef};
use crate::data::split::LoadedSplit;
use crate::onnx::runtime::{self, DeviceChoice};
use crate::tensorfile::{Error as TensorFileError, Format, Reader, Writer};

/// An image to preprocess: encoded bytes (any format `ics_encoder` decodes) or decoded RGB,
/// borrowed from the source when it holds them (nothing is copied) or owned when loaded.
#[derive(Debug, Clone)]
pub enum Pixels<'a> {
    Encoded(Cow<'a, [u8]>),
    Rgb(Cow<'a, RgbImage>),
}

/// A list of images, loaded on demand (possibly from several threads at once).
pub trait ImageSource: Sync {
    /// Number of images.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `i`.
    fn load(&self, i: usize) -> Result<Pixels<'_>>;

    /// Feeds what identifies image `i` (content, or path + size + mtime) to the cache key.
    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()>;

    /// A name for error messages.
    fn name(&self, i: usize) -> String {
        format!("image {i}")
    }
}

/// An image file's bytes.
pub fn read_file(path: &Path) -> Result<Pixels<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Pixels::Encoded(Cow::Owned(bytes)))
}

fn file_fingerprint(path: &Path, hasher: &mut Sha256) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(meta.len().to_le_bytes());
    hasher.update(mtime.to_le_bytes());
    Ok(())
}

fn rgb_fingerprint(width: u32, height: u32, data: &[u8], hasher: &mut Sha256) {
    hasher.update(width.to_le_bytes());
    hasher.update(height.to_le_bytes());
    hasher.update(Sha256::digest(data));
}

/// Image files.
pub struct Files(pub Vec<PathBuf>);

impl ImageSource for Files {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        read_file(&self.0[i])
    }

    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        file_fingerprint(&self.0[i], hasher)
    }

    fn name(&self, i: usize) -> String {
        self.0[i].display().to_string()
    }
}

/// Encoded images in memory.
pub struct EncodedImages(pub Vec<Vec<u8>>);

impl ImageSource for EncodedImages {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        Ok(Pixels::Encoded(Cow::Borrowed(&self.0[i])))
    }

    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        hasher.update(Sha256::digest(&self.0[i]));
        Ok(())
    }
}

/// A dataset's images: files are decoded by `ics_encoder` (any supported format, as
/// `ics_encode` will), in-memory images are used as they are.
impl ImageSource for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        match &self.items()[i] {
            ImageRef::Path(p) => read_file(&self.root().join(p)),
            ImageRef::Memory(img) => Ok(Pixels::Rgb(Cow::Borrowed(img))),
        }
    }

    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        match &self.items()[i] {
            ImageRef::Path(p) => file_fingerprint(&self.root().join(p), hasher),
            ImageRef::Memory(img) => {
                rgb_fingerprint(img.width, img.height, &img.data, hasher);
                Ok(())
            }
        }
    }

    fn name(&self, i: usize) -> String {
        self.item_name(i)
    }
}

/// A loaded split's images, whose error names are `file:line: image`. Loading and
/// fingerprints are the dataset's own, so the feature cache is shared with any other caller
/// extracting the same dataset.
impl ImageSource for LoadedSplit {
    fn len(&self) -> usize {
        self.dataset.len()
    }
    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        ImageSource::load(&self.dataset, i).with_context(|| self.item_name(i))
    }
    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        self.dataset
            .fingerprint(i, hasher)
            .with_context(|| self.item_name(i))
    }
    fn name(&self, i: usize) -> String {
        self.item_name(i)
    }
}

/// How to run an extraction.
#[derive(Debug, Clone)]
pub struct FeatureOptions {
    /// Images per ONNX Runtime call.
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads (0 = one per core).
    pub intra_threads: usize,
    /// Pixel limit per decoded image.
    pub max_pixels: u64,
    /// Where to keep cached features; `None` = no cache.
    pub cache_dir: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Keep spatial maps: the feature value may be N x C x H x W, each row holding an image's
    /// C x H x W values (the activations a fine-tuning run caches). Otherwise every dimension
    /// after C must be 1.
    pub maps: bool,
    /// Where ONNX Runtime runs (its CUDA execution provider for `cuda`, and for `auto` when it
    /// can start), and where a fine-tuning run trains. Cached features do not depend on it.
    pub device: DeviceChoice,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            batch_size: 32,
            intra_threads: 0,
            max_pixels: DEFAULT_MAX_PIXELS,
            cache_dir: None,
            progress: true,
            maps: false,
            device: DeviceChoice::Cpu,
        }
    }
}

/// What an extraction produced and how long its parts took.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// (n, D).
    pub features: Array2<f32>,
    /// Whether the features came from the cache (then the timings are zero).
    pub from_cache: bool,
    /// Seconds spent decoding and preprocessing.
    pub preprocess_s: f64,
    /// Seconds spent in ONNX Runtime.
    pub inference_s: f64,
    /// The cache file used or written, if any.
    pub cache_file: Option<PathBuf>,
    /// ONNX Runtime's provider the features were computed on, and why (`None` from the cache).
    pub provider: Option<(&'static str, String)>,
}

/// Features of a loaded split (through the cache when `opts` has one); errors say which split.
pub fn split_features(
    backbone: &Backbone,
    split: &LoadedSplit,
    opts: &FeatureOptions,
) -> Result<Extracted> {
    extract_features(backbone, split, opts)
        .with_context(|| format!("extracting features of the {} split", split.name.name()))
}

/// The cache key of extracting `images` with `backbone` (sha256, 32 bytes).
pub fn cache_key(backbone: &Backbone, images: &dyn ImageSource) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"ics-features v1\n");
    h.update(backbone.sha256.as_bytes());
    h.update(b"\n");
    h.update(backbone.feature_output.as_bytes());
    h.update(b"\n");
    h.update(backbone.preprocess.describe().as_bytes());
    h.update(b"\n");
    h.update((images.len() as u64).to_le_bytes());
    for i in 0..images.len() {
        images.fingerprint(i, &mut h)?;
        h.update([0xff]);
    }
    Ok(h.finalize().into())
}

/// The feature cache's format.
pub const CACHE_FORMAT: Format = Format {
    name: "ics-train feature cache",
    key: "ics_train.features",
    version: 1,
    oldest: 1,
    older_advice: "delete it",
};

/// The feature cache's description.
#[derive(Serialize, Deserialize)]
struct CacheKey {
    /// [`cache_key`], hex.
    key: String,
}

fn cache_path(dir: &Path, key: &[u8; 32]) -> PathBuf {
    dir.join(format!("features-{}.bin", &to_hex(key)[..32]))
}

/// Reads a cache file; `Ok(None)` when it does not exist or is for another key, format or
/// version.
pub fn read_cache(path: &Path, key: &[u8; 32]) -> Result<Option<Array2<f32>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let damaged = || format!("feature cache {} is damaged; delete it", path.display());
    let file = match Reader::parse(&bytes, &CACHE_FORMAT) {
        Ok(file) => file,
        Err(TensorFileError::NotOurs { .. })
        | Err(TensorFileError::OtherFormat { .. })
        | Err(TensorFileError::Version { .. }) => return Ok(None),
        Err(e) => return Err(e).with_context(damaged),
    };
    if file.description::<CacheKey>().with_context(damaged)?.key != to_hex(key) {
        return Ok(None);
    }
    Ok(Some(file.matrix("features").with_context(damaged)?))
}

/// Writes a cache file atomically (temporary file, then rename).
pub fn write_cache(path: &Path, key: &[u8; 32], features: &Array2<f32>) -> Result<()> {
    let mut file = Writer::new();
    file.matrix("features", features)?;
    let bytes = file.to_bytes(&CACHE_FORMAT, &CacheKey { key: to_hex(key) })?;
    crate::files::write_atomically(path, |w| w.write_all(&bytes))
}

/// Preprocesses images `indices` of `images` into one NCHW batch, in parallel.
pub fn preprocess_batch(
    images: &dyn ImageSource,
    indices: std::ops::Range<usize>,
    p: &Preprocess,
    max_pixels: u64,
) -> Result<Vec<f32>> {
    let indices: Vec<usize> = indices.collect();
    preprocess_indices(images, &indices, p, max_pixels)
}

/// Preprocesses images `indices` (any order) of `images` into one NCHW batch, in parallel.
pub fn preprocess_indices(
    images: &dyn ImageSource,
    indices: &[usize],
    p: &Preprocess,
    max_pixels: u64,
) -> Result<Vec<f32>> {
    let item = p.output_len();
    let mut batch = vec![0f32; indices.len() * item];
    batch
        .par_chunks_mut(item)
        .zip(indices.par_iter().copied())
        .try_for_each(|(out, i)| -> Result<()> {
            let result = match images.load(i)? {
                Pixels::Encoded(bytes) => preprocess_into(&bytes, p, max_pixels, out),
                Pixels::Rgb(img) => preprocess_rgb(img.width, img.height, &img.data, p, out),
            };
            result.with_context(|| images.name(i))
        })?;
    Ok(batch)
}

/// A backbone session that turns preprocessed batches into feature rows.
pub struct Extractor {
    session: ort::session::Session,
    input_name: String,
    feature_output: String,
    preprocess: Preprocess,
    maps: bool,
    /// ONNX Runtime's provider the session runs on, and why.
    pub provider: (&'static str, String),
}

impl Extractor {
    /// A CPU session.
    pub fn new(backbone: &Backbone, intra_threads: usize) -> Result<Self> {
        Self::on(backbone, intra_threads, DeviceChoice::Cpu)
    }

    /// A session on `device` ([`runtime::session_on`]: `cuda` fails saying what is missing,
    /// `auto` falls back to the CPU).
    pub fn on(backbone: &Backbone, intra_threads: usize, device: DeviceChoice) -> Result<Self> {
        let built = runtime::session_on(backbone.onnx_bytes(), intra_threads, device)?;
        Ok(Extractor {
            session: built.session,
            input_name: backbone.input_name.clone(),
            feature_output: backbone.feature_output.clone(),
            preprocess: backbone.preprocess,
            maps: false,
            provider: (built.provider, built.reason),
        })
    }

    /// An extractor whose rows may be whole activation maps (C x H x W values per image).
    pub fn with_maps(mut self, maps: bool) -> Self {
        self.maps = maps;
        self
    }

    /// Features of `n` preprocessed images (`batch` = n x 3 x S x S): (D, n x D values).
    /// Trailing 1-sized dimensions (N x D x 1 x 1 pooled maps) are flattened.
    pub fn run(&mut self, batch: &[f32], n: usize) -> Result<(usize, Vec<f32>)> {
        let s = self.preprocess.size as usize;
        let out = runtime::run_f32(
            &mut self.session,
            &self.input_name,
            &[n, 3, s, s],
            batch,
            &[&self.feature_output],
        )?
        .remove(0);
        ensure!(
            out.shape.first() == Some(&n) && out.shape.len() >= 2,
            "feature output \"{}\" has shape {:?} for a batch of {n}",
            self.feature_output,
            out.shape
        );
        let d: usize = out.shape[1..].iter().product();
        ensure!(
            self.maps || out.shape[2..].iter().all(|&x| x == 1),
            "feature output \"{}\" has shape {:?}: not one vector per image",
            self.feature_output,
            out.shape
        );
        Ok((d, out.data))
    }
}

/// Extracts the features of every image (rows in image order), using and filling the cache
/// when `opts.cache_dir` is set.
pub fn extract_features(
    backbone: &Backbone,
    images: &dyn ImageSource,
    opts: &FeatureOptions,
) -> Result<Extracted> {
    ensure!(opts.batch_size >= 1, "batch size must be at least 1");
    let cache_file = match &opts.cache_dir {
        Some(dir) => {
            let key = cache_key(backbone, images)?;
            let path = cache_path(dir, &key);
            if let Some(features) = read_cache(&path, &key)? {
                return Ok(Extracted {
                    features,
                    from_cache: true,
                    preprocess_s: 0.0,
                    inference_s: 0.0,
                    cache_file: Some(path),
                    provider: None,
                });
            }
            Some((path, key))
        }
        None => None,
    };

    let n = images.len();
    let mut extractor =
        Extractor::on(backbone, opts.intra_threads, opts.device)?.with_maps(opts.maps);
    let bar = if opts.progress {
        let bar = ProgressBar::new(n as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "features {bar:40} {pos}/{len} images [{elapsed_precise}, {per_sec}, eta {eta}]",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let (mut preprocess_s, mut inference_s) = (0.0, 0.0);
    let mut dim = backbone.feature_dim;
    let mut data: Vec<f32> = Vec::with_capacity(n * dim.unwrap_or(0));
    let mut start = 0;
    while start < n {
        let end = (start + opts.batch_size).min(n);
        let t0 = Instant::now();
        let batch = preprocess_batch(images, start..end, &backbone.preprocess, opts.max_pixels)?;
        let t1 = Instant::now();
        let (d, rows) = extractor
            .run(&batch, end - start)
            .with_context(|| format!("images {start}..{end}"))?;
        inference_s += t1.elapsed().as_secs_f64();
        preprocess_s += (t1 - t0).as_secs_f64();
        match dim {
            Some(known) if known != d => {
                bail!("the backbone gave {d} features, {known} were expected")
            }
            _ => dim = Some(d),
        }
        data.extend_from_slice(&rows);
        bar.inc((end - start) as u64);
        start = end;
    }
    bar.finish_and_clear();
    let features = Array2::from_shape_vec((n, dim.unwrap_or(0)), data)?;
    let cache_file = match cache_file {
        Some((path, key)) => {
            write_cache(&path, &key, &features)?;
            Some(path)
        }
        None => None,
    };
    Ok(Extracted {
        features,
        from_cache: false,
        preprocess_s,
        inference_s,
        cache_file,
        provider: Some(extractor.provider),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip_and_key_mismatch() {
        let dir = std::env::temp_dir().join(format!("ics-feat-cache-{}", std::process::id()));
        let key = [7u8; 32];
        let path = cache_path(&dir, &key);
        let f = Array2::from_shape_fn((3, 4), |(i, j)| i as f32 - j as f32 * 0.5);
        assert!(read_cache(&path, &key).unwrap().is_none());
        write_cache(&path, &key, &f).unwrap();
        assert_eq!(read_cache(&path, &key).unwrap().unwrap(), f);
        assert!(read_cache(&path, &[8u8; 32]).unwrap().is_none());
        // A cut file is an error, not silently wrong features.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let e = format!("{:#}", read_cache(&path, &key).unwrap_err());
        assert!(
            e.contains("is damaged; delete it") && e.contains("truncated"),
            "{e}"
        );
        // The cache files of earlier trainers (`ICSFEAT1`, the key, n, D, the values) are
        // misses, written over with the features.
        let mut old = b"ICSFEAT1".to_vec();
        old.extend(key);
        old.extend(3u64.to_le_bytes());
        old.extend(4u64.to_le_bytes());
        old.extend(f.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&path, &old).unwrap();
        assert!(read_cache(&path, &key).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_follow_the_shared_preprocessing() {
        let imgs = EncodedImages(vec![b"not an image".to_vec()]);
        let p = Preprocess::efficientnet_lite(4);
        let err = preprocess_batch(&imgs, 0..1, &p, 1000).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown image format"),
            "{err:#}"
        );

        struct Two;
        impl ImageSource for Two {
            fn len(&self) -> usize {
                2
            }
            fn load(&self, i: usize) -> Result<Pixels<'_>> {
                Ok(Pixels::Rgb(Cow::Owned(RgbImage {
                    width: 1,
                    height: 1,
                    data: vec![if i == 0 { 255 } else { 127 }; 3],
                })))
            }
            fn fingerprint(&self, i: usize, h: &mut Sha256) -> Result<()> {
                h.update([i as u8]);
                Ok(())
            }
        }
        let b = preprocess_batch(&Two, 0..2, &p, 1000).unwrap();
        assert_eq!(b.len(), 2 * 48);
        assert!(b[..48].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(b[48..].iter().all(|&v| v.abs() < 1e-6));
    }
}
