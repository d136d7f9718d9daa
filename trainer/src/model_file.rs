//! The model file `ics-train train` writes and `eval`/`export` read: the trained head, its
//! centres, the per-image weights, the configuration and history, plus where its features
//! came from (the backbone file and the data), so later commands need only this file.
//!
//! # Format, version 3 ([`FORMAT_VERSION`])
//!
//! A [safetensors](https://github.com/huggingface/safetensors) file: an 8-byte little-endian
//! length `N`, `N` bytes of JSON header (tensor table and `__metadata__`), then the tensors'
//! bytes (little-endian, row-major). `head -c 4096 model.icsm` shows the header.
//!
//! `__metadata__` holds one key, `ics_train.model`, whose value is the JSON of the model's
//! description ([`Header`]), beginning with `"format": "ics-train model"` and
//! `"format_version": 3`: the trainer version, the [`TrainConfig`] (the JSON of `--config`),
//! the head's layer count and dropout, the centre method, class names, the per-epoch history
//! ([`EpochLog`], as in the training report), the [`BackboneRecord`], the [`DataRecord`] and,
//! for a fine-tuned model, the [`FinetunedRecord`].
//!
//! | tensor | dtype | shape | |
//! |---|---|---|---|
//! | `head.{i}.weight` | F32 | (in, out) | layer `i`: `y = x · W + b` |
//! | `head.{i}.bias` | F32 | (out) | |
//! | `centres` | F32 | (classes, bits) | ±1, row `k` = class `k` |
//! | `instance_weights` | F64 | (images, classes) | learned weights, training order |
//! | `instance_labels` | U8 | (images, classes) | multi-hot labels of the training images |
//! | `backbone.{name}` | F32 | as named | fine-tuned models only: every backbone tensor ([`FinetunedRecord::tensors`]) |
//!
//! Version 2 is version 3 without fine-tuning (it is read as such). Version 1 (`ICSMODEL`, a
//! u32 version, a JSON header that embedded the command line's data options, then raw f32
//! layers) and any other version are refused with an error naming both versions and what to
//! do: train again with this `ics-train`, or use the one that wrote it. The version changes
//! whenever what is written changes meaning (version 3: a model may carry its own backbone,
//! which a version-2 reader would ignore, encoding with the wrong network).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ndarray::{Array1, Array2};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::data::split::{absolute, DataSpec};
use crate::ics::{
    CentreMethod, Centres, EpochLog, HashHead, IcsModel, InstanceWeights, Linear, TrainConfig,
};

/// The `format` every model file names.
pub const FORMAT: &str = "ics-train model";
/// The version this trainer writes (and reads, with [`OLDEST_READ_VERSION`]).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this trainer reads (version 2: no fine-tuned backbone).
pub const OLDEST_READ_VERSION: u32 = 2;
/// The one `__metadata__` key of the safetensors header.
pub const METADATA_KEY: &str = "ics_train.model";
/// First bytes of a version-1 file.
const V1_MAGIC: &[u8; 8] = b"ICSMODEL";

/// Where the features a model was trained on came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    /// The backbone file (absolute path when written).
    pub path: PathBuf,
    /// sha256 of the backbone's ONNX bytes as loaded: the feature cache key's first part.
    pub sha256: String,
    pub description: String,
    pub feature_dim: usize,
}

/// Where a model's data is (absolute paths when written by `ics-train train`): a composed
/// benchmark folder, or one file per split with its options. Later commands read the
/// query/database splits from here, and the exporter samples training images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Composed benchmark folder (from `ics-train data compose`).
    pub composed_dir: Option<PathBuf>,
    /// Split files: HashNet list files, or COCO instances JSON.
    pub train_file: Option<PathBuf>,
    pub query_file: Option<PathBuf>,
    pub database_file: Option<PathBuf>,
    /// Folder the split files' image paths are relative to (none: each file's folder).
    pub image_root: Option<PathBuf>,
    /// Class names, one a line.
    pub classes_file: Option<PathBuf>,
    /// Areas file of the training split.
    pub train_areas_file: Option<PathBuf>,
}

impl DataRecord {
    /// What a model file records of `spec`: the same data with every path made absolute, so
    /// later commands find it from any folder (an error names a path that does not exist).
    pub fn of(spec: &DataSpec) -> Result<DataRecord> {
        let abs = |p: &Option<PathBuf>| p.as_deref().map(absolute).transpose();
        Ok(DataRecord {
            composed_dir: abs(&spec.composed_dir)?,
            train_file: abs(&spec.train_file)?,
            query_file: abs(&spec.query_file)?,
            database_file: abs(&spec.database_file)?,
            image_root: abs(&spec.image_root)?,
            classes_file: abs(&spec.classes_file)?,
            train_areas_file: abs(&spec.train_areas_file)?,
        })
    }

    /// The data the record points to.
    pub fn spec(&self) -> DataSpec {
        DataSpec {
            composed_dir: self.composed_dir.clone(),
            train_file: self.train_file.clone(),
            query_file: self.query_file.clone(),
            database_file: self.database_file.clone(),
            image_root: self.image_root.clone(),
            classes_file: self.classes_file.clone(),
            train_areas_file: self.train_areas_file.clone(),
        }
    }
}

/// A fine-tuned backbone carried by the model file: the network's architecture, its
/// preprocessing, and every weight (BatchNorm folded), so later commands rebuild exactly the
/// network the head was trained with. The tensors are interpreted by `crate::backbone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetunedRecord {
    /// JSON of the `backbone::architecture::Architecture`.
    pub architecture: serde_json::Value,
    /// The fine-tuned network's description (the model contract's `backbone`).
    pub description: String,
    /// `none` never; `top:N` or `all`.
    pub mode: String,
    /// Input side S (the network takes N x 3 x S x S).
    pub image_size: u32,
    /// Resize mode name (`shorter-side-center-crop`, `stretch`).
    pub resize: String,
    pub norm_mean: [f32; 3],
    pub norm_std: [f32; 3],
    /// (name, shape, values), stored as the tensors `backbone.{name}`.
    #[serde(skip)]
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// The tensor names, in order (the header's index of the `backbone.*` tensors).
    pub tensor_names: Vec<String>,
}

/// The JSON description in the header (everything but the tensors).
#[derive(Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    pub trainer_version: String,
    pub config: TrainConfig,
    /// Number of head layers (tensors `head.0` .. `head.{layers-1}`).
    pub layers: usize,
    pub dropout: f64,
    pub centre_method: CentreMethod,
    pub class_names: Vec<String>,
    pub history: Vec<EpochLog>,
    pub backbone: Option<BackboneRecord>,
    pub data: Option<DataRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetuned: Option<FinetunedRecord>,
}

/// The fields read before anything else, to refuse other formats and versions first.
#[derive(Deserialize)]
struct Identity {
    format: Option<String>,
    format_version: Option<u32>,
}

/// A model with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub model: IcsModel,
    pub class_names: Vec<String>,
    /// The backbone file the model was trained from (for a fine-tuned model: the starting
    /// point; the network itself is [`ModelFile::finetuned`]).
    pub backbone: Option<BackboneRecord>,
    pub data: Option<DataRecord>,
    /// The fine-tuned backbone, for models trained with `--finetune top:N|all`.
    pub finetuned: Option<FinetunedRecord>,
}

fn f32_bytes<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

fn st_err(e: SafeTensorError) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

impl ModelFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let m = &self.model;
        let header = Header {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            trainer_version: env!("CARGO_PKG_VERSION").into(),
            config: m.config().clone(),
            layers: m.layers().len(),
            dropout: m.head().dropout(),
            centre_method: m.centres().method(),
            class_names: self.class_names.clone(),
            history: m.history().to_vec(),
            backbone: self.backbone.clone(),
            data: self.data.clone(),
            finetuned: self.finetuned.clone().map(|f| FinetunedRecord {
                tensor_names: f.tensors.iter().map(|t| t.0.clone()).collect(),
                ..f
            }),
        };
        let json = serde_json::to_string(&header)?;
        let w = m.weights();
        let mut labels = Array2::<u8>::zeros((w.len(), w.classes()));
        for i in 0..w.len() {
            for &k in w.labels(i) {
                labels[[i, k]] = 1;
            }
        }
        // (name, dtype, shape, bytes)
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in m.layers().iter().enumerate() {
            let (inputs, outputs) = (l.inputs(), l.outputs());
            tensors.push((
                format!("head.{i}.weight"),
                Dtype::F32,
                vec![inputs, outputs],
                f32_bytes(l.weight().iter()),
            ));
            tensors.push((
                format!("head.{i}.bias"),
                Dtype::F32,
                vec![outputs],
                f32_bytes(l.bias().iter()),
            ));
        }
        let c = m.centres().matrix();
        tensors.push((
            "centres".into(),
            Dtype::F32,
            vec![c.nrows(), c.ncols()],
            f32_bytes(c.iter()),
        ));
        tensors.push((
            "instance_weights".into(),
            Dtype::F64,
            vec![w.len(), w.classes()],
            w.matrix().iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        tensors.push((
            "instance_labels".into(),
            Dtype::U8,
            vec![w.len(), w.classes()],
            labels.iter().copied().collect(),
        ));
        if let Some(f) = &self.finetuned {
            for (name, shape, values) in &f.tensors {
                ensure!(
                    shape.iter().product::<usize>() == values.len(),
                    "backbone tensor {name}: shape {shape:?} for {} values",
                    values.len()
                );
                tensors.push((
                    format!("backbone.{name}"),
                    Dtype::F32,
                    shape.clone(),
                    f32_bytes(values.iter()),
                ));
            }
        }
        let views = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.as_str(), v))
                    .map_err(st_err)
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
        safetensors::serialize(views, Some(metadata)).map_err(st_err)
    }

    /// Writes the file (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::files::write_atomically(path, |w| w.write_all(&bytes))
    }

    /// Reads a model file; errors name the file.
    pub fn load(path: &Path) -> Result<ModelFile> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("model file {}", path.display()))
    }

    /// Parses a model file's bytes: format and version first, then the tensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<ModelFile> {
        let header = read_header(bytes)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("damaged tensor table: {e:?}"))?;
        let tensor = |name: &str, dtype: Dtype, dims: usize| -> Result<TensorView<'_>> {
            let t = st
                .tensor(name)
                .map_err(|_| anyhow::anyhow!("damaged: no tensor {name}"))?;
            ensure!(
                t.dtype() == dtype && t.shape().len() == dims,
                "damaged: tensor {name} is {:?} {:?}, expected {dtype:?} with {dims} dimensions",
                t.dtype(),
                t.shape()
            );
            Ok(t)
        };
        let f32s = |t: &TensorView| -> Vec<f32> {
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let mut layers = Vec::with_capacity(header.layers);
        for i in 0..header.layers {
            let w = tensor(&format!("head.{i}.weight"), Dtype::F32, 2)?;
            let b = tensor(&format!("head.{i}.bias"), Dtype::F32, 1)?;
            let shape = (w.shape()[0], w.shape()[1]);
            layers.push(
                Linear::new(
                    Array2::from_shape_vec(shape, f32s(&w))?,
                    Array1::from_vec(f32s(&b)),
                )
                .with_context(|| format!("head layer {i}"))?,
            );
        }
        let head = HashHead::from_layers(layers, header.dropout)?;
        let c = tensor("centres", Dtype::F32, 2)?;
        let centres = Centres::from_matrix(
            header.centre_method,
            Array2::from_shape_vec((c.shape()[0], c.shape()[1]), f32s(&c))?,
        )
        .context("centres")?;
        let w = tensor("instance_weights", Dtype::F64, 2)?;
        let l = tensor("instance_labels", Dtype::U8, 2)?;
        ensure!(
            w.shape() == l.shape(),
            "damaged: instance_weights is {:?} but instance_labels {:?}",
            w.shape(),
            l.shape()
        );
        let (n, classes) = (w.shape()[0], w.shape()[1]);
        let matrix = Array2::from_shape_vec(
            (n, classes),
            w.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        )?;
        let mut lists = Vec::with_capacity(n);
        for (i, row) in l.data().chunks_exact(classes.max(1)).take(n).enumerate() {
            let mut list = Vec::new();
            for (k, &v) in row.iter().enumerate() {
                match v {
                    0 => {}
                    1 => list.push(k),
                    other => bail!("damaged: instance_labels[{i}, {k}] is {other}, not 0 or 1"),
                }
            }
            lists.push(list);
        }
        let weights = InstanceWeights::from_parts(matrix, lists).context("instance weights")?;
        let bits = header.config.bits;
        if head.bits() != bits || centres.bits() != bits {
            bail!(
                "inconsistent: config says {bits} bits, head {}, centres {}",
                head.bits(),
                centres.bits()
            );
        }
        ensure!(
            centres.classes() == classes,
            "inconsistent: {} centres, but the instance weights have {classes} classes",
            centres.classes()
        );
        let finetuned = match header.finetuned {
            Some(mut f) => {
                f.tensors = f
                    .tensor_names
                    .iter()
                    .map(|name| {
                        let t = st
                            .tensor(&format!("backbone.{name}"))
                            .map_err(|_| anyhow::anyhow!("damaged: no tensor backbone.{name}"))?;
                        ensure!(
                            t.dtype() == Dtype::F32,
                            "damaged: tensor backbone.{name} is {:?}",
                            t.dtype()
                        );
                        Ok((name.clone(), t.shape().to_vec(), f32s(&t)))
                    })
                    .collect::<Result<_>>()?;
                Some(f)
            }
            None => None,
        };
        Ok(ModelFile {
            model: IcsModel::new(header.config, head, centres, weights, header.history),
            class_names: header.class_names,
            backbone: header.backbone,
            data: header.data,
            finetuned,
        })
    }
}

/// The header, after checking that `bytes` is a whole model file of this version.
fn read_header(bytes: &[u8]) -> Result<Header> {
    if bytes.starts_with(V1_MAGIC) {
        let version = bytes
            .get(8..12)
            .map_or(1, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        bail!("{}", version_error(version));
    }
    let not_ours = "not an ics-train model file (written by `ics-train train`)";
    ensure!(
        bytes.len() >= 8,
        "{not_ours}: {} bytes (a truncated file?)",
        bytes.len()
    );
    ensure!(bytes.get(8) == Some(&b'{'), "{not_ours}");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let have = (bytes.len() - 8) as u64;
    ensure!(
        n <= have,
        "truncated: the header is {n} bytes, the file has {have} after its length"
    );
    let json = &bytes[8..8 + n as usize];
    let table: HashMap<String, serde_json::Value> =
        serde_json::from_slice(json).context("damaged header (JSON)")?;
    let description = table
        .get("__metadata__")
        .and_then(|m| m.get(METADATA_KEY))
        .and_then(|v| v.as_str())
        .with_context(|| format!("{not_ours}: a safetensors file without {METADATA_KEY}"))?;
    let id: Identity = serde_json::from_str(description).context("damaged header (JSON)")?;
    ensure!(
        id.format.as_deref() == Some(FORMAT),
        "{not_ours}: its format is {:?}",
        id.format
    );
    let version = id
        .format_version
        .context("damaged header: no format_version")?;
    ensure!(
        (OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version),
        "{}",
        version_error(version)
    );
    // Before parsing the tensors: a short file is reported as truncated, not as damaged.
    let end = table
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    ensure!(
        8 + n + end <= bytes.len() as u64,
        "truncated: {} bytes, the tensors end at byte {}",
        bytes.len(),
        8 + n + end
    );
    serde_json::from_str(description).context("damaged header (JSON)")
}

fn version_error(version: u32) -> String {
    let what = if version > FORMAT_VERSION {
        "read it with the newer ics-train that wrote it"
    } else {
        "train the model again with this ics-train (`ics-train train`)"
    };
    format!(
        "model file format version {version}; this ics-train reads versions \
         {OLDEST_READ_VERSION} to {FORMAT_VERSION}: {what}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ics::synthetic::make;
    use crate::ics::train_silently;

    fn model_file() -> ModelFile {
        let data = make(60, 8, 3, 2, 0.5, 4);
        let config = TrainConfig {
            bits: 16,
            hidden: vec![12],
            dropout: 0.1,
            epochs: 3,
            warmup_epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let model = train_silently(data.features.view(), data.labels.view(), &config).unwrap();
        ModelFile {
            model,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            backbone: Some(BackboneRecord {
                path: "/models/bb.onnx".into(),
                sha256: "ab".repeat(32),
                description: "toy@8px".into(),
                feature_dim: 8,
            }),
            data: Some(DataRecord {
                composed_dir: Some("/data/bench".into()),
                ..DataRecord::default()
            }),
            finetuned: None,
        }
    }

    fn err(bytes: &[u8]) -> String {
        format!("{:#}", ModelFile::from_bytes(bytes).unwrap_err())
    }

    #[test]
    fn round_trip_keeps_everything() {
        let mf = model_file();
        // The weights were learned (not uniform) and some labels are shared: a real test.
        assert!(mf.model.history().iter().any(|l| l.weights_updated));
        let bytes = mf.to_bytes().unwrap();
        assert_eq!(
            bytes,
            mf.to_bytes().unwrap(),
            "the same model, the same bytes"
        );
        let back = ModelFile::from_bytes(&bytes).unwrap();
        assert_eq!(back, mf);
        // Through a file, too.
        let dir = std::env::temp_dir().join(format!("ics-model-file-{}", std::process::id()));
        let path = dir.join("sub/m.icsm");
        mf.save(&path).unwrap();
        assert_eq!(ModelFile::load(&path).unwrap(), mf);
        assert!(!path.with_extension("icsm.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        // It is a plain safetensors file.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "centres",
                "head.0.bias",
                "head.0.weight",
                "head.1.bias",
                "head.1.weight",
                "instance_labels",
                "instance_weights"
            ]
        );
        assert_eq!(st.tensor("head.0.weight").unwrap().shape(), [8, 12]);
        assert_eq!(st.tensor("instance_weights").unwrap().shape(), [60, 3]);
    }

    /// `bytes` with the description's JSON edited by `edit` (the tensors unchanged).
    fn with_description(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
        let mut d: serde_json::Value =
            serde_json::from_str(&meta.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
        edit(&mut d);
        let views: Vec<(String, TensorView)> = st.tensors();
        let metadata = HashMap::from([(METADATA_KEY.to_string(), d.to_string())]);
        safetensors::serialize(views, Some(metadata)).unwrap()
    }

    #[test]
    fn other_versions_are_refused_naming_both() {
        let mf = model_file();
        let bytes = mf.to_bytes().unwrap();
        let newer = with_description(&bytes, |d| d["format_version"] = 4.into());
        let e = err(&newer);
        assert!(
            e.contains("format version 4")
                && e.contains("reads versions 2 to 3")
                && e.contains("newer"),
            "{e}"
        );
        // Version 2 (no fine-tuned backbone) reads as before.
        let v2 = with_description(&bytes, |d| d["format_version"] = 2.into());
        assert_eq!(ModelFile::from_bytes(&v2).unwrap(), mf);
        // The version is checked before the rest of the description is read.
        let older = with_description(&bytes, |d| {
            d["format_version"] = 1.into();
            d["config"] = "not a configuration".into();
        });
        let e = err(&older);
        assert!(
            e.contains("format version 1")
                && e.contains("reads versions 2 to 3")
                && e.contains("ics-train train"),
            "{e}"
        );
        // A version-1 file (its layout: magic, u32 version, u64 header length, JSON, floats).
        let mut v1 = b"ICSMODEL".to_vec();
        v1.extend(1u32.to_le_bytes());
        v1.extend(2u64.to_le_bytes());
        v1.extend(b"{}");
        let e = err(&v1);
        assert!(
            e.contains("format version 1") && e.contains("reads versions 2 to 3"),
            "{e}"
        );
    }

    #[test]
    fn a_finetuned_backbone_round_trips_as_tensors() {
        let mut mf = model_file();
        mf.finetuned = Some(FinetunedRecord {
            architecture: serde_json::json!({"name": "toy"}),
            description: "toy@8px fine-tuned top:1".into(),
            mode: "top:1".into(),
            image_size: 8,
            resize: "stretch".into(),
            norm_mean: [127.0; 3],
            norm_std: [128.0; 3],
            tensors: vec![
                (
                    "head.weight".into(),
                    vec![2, 3, 1, 1],
                    vec![0.5, -1.0, 2.0, 0.0, 1.0, 3.0],
                ),
                ("head.bias".into(), vec![2], vec![0.25, -0.25]),
            ],
            tensor_names: vec![],
        });
        let bytes = mf.to_bytes().unwrap();
        let back = ModelFile::from_bytes(&bytes).unwrap();
        let f = back.finetuned.as_ref().unwrap();
        assert_eq!(f.tensors, mf.finetuned.as_ref().unwrap().tensors);
        assert_eq!(f.tensor_names, vec!["head.weight", "head.bias"]);
        assert_eq!(f.description, "toy@8px fine-tuned top:1");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("backbone.head.weight").unwrap().shape(),
            [2, 3, 1, 1]
        );
        // A missing backbone tensor is named.
        let bad = with_description(&bytes, |d| {
            d["finetuned"]["tensor_names"] = serde_json::json!(["head.weight", "nope"])
        });
        assert!(
            err(&bad).contains("no tensor backbone.nope"),
            "{}",
            err(&bad)
        );
    }

    #[test]
    fn truncated_files_say_so() {
        let bytes = model_file().to_bytes().unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for cut in [
            8 + 1,
            8 + n / 2,
            8 + n - 1,
            8 + n,
            8 + n + 5,
            bytes.len() - 1,
        ] {
            let e = err(&bytes[..cut]);
            assert!(
                e.contains("truncated"),
                "cut at {cut} of {}: {e}",
                bytes.len()
            );
        }
        let e = err(&bytes[..5]);
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn other_files_are_not_model_files() {
        let e = err(b"not a model at all");
        assert!(e.contains("not an ics-train model file"), "{e}");
        // A safetensors file without the model's description.
        let data = [0u8; 4];
        let view = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
        let plain = safetensors::serialize([("x", view)], None).unwrap();
        let e = err(&plain);
        assert!(e.contains("not an ics-train model file"), "{e}");
        // Damaged contents are named.
        let bytes = model_file().to_bytes().unwrap();
        let bad = with_description(&bytes, |d| d["config"]["bits"] = 24.into());
        let e = err(&bad);
        assert!(e.contains("inconsistent: config says 24 bits"), "{e}");
        let bad = with_description(&bytes, |d| d["layers"] = 3.into());
        let e = err(&bad);
        assert!(e.contains("no tensor head.2.weight"), "{e}");
    }

    #[test]
    fn data_records_hold_absolute_paths() {
        let dir = std::env::temp_dir().join(format!("ics-train-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = DataSpec {
            train_file: Some(dir.join(".").join("..").join(dir.file_name().unwrap())),
            ..DataSpec::default()
        };
        let rec = DataRecord::of(&spec).unwrap();
        let abs = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(rec.train_file.as_deref(), Some(abs.as_path()));
        assert_eq!(rec.spec().train_file, Some(abs));
        assert!(rec.spec().query_file.is_none() && rec.composed_dir.is_none());
        let missing = DataSpec::composed(dir.join("missing"));
        let err = format!("{:#}", DataRecord::of(&missing).unwrap_err());
        assert!(err.contains("missing not found"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
