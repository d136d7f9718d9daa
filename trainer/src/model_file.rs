//! The model file `ics-train train` writes and `eval`/`export` read: the trained head, its
//! centres, the per-image weights, the configuration and history, plus where its features
//! came from (the backbone file and the data), so later commands need only this file.
//!
//! # Format, version 3 ([`FORMAT`])
//!
//! A tensor file ([`crate::tensorfile`]: safetensors) whose description, under the
//! `__metadata__` key `ics_train.model`, is the JSON of [`Header`] after
//! `"format": "ics-train model"` and `"format_version": 3`: the trainer version, the
//! [`TrainConfig`] (the JSON of `--config`), the head's layer count and dropout, the centre
//! method, class names, the per-epoch history ([`EpochLog`], as in the training report), the
//! [`BackboneRecord`], the [`DataSpec`] (absolute paths) and, for a fine-tuned model, the
//! [`FinetunedRecord`].
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

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use ics_encoder::preprocess::ResizeMode;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::backbone::architecture::Architecture;
use crate::backbone::BackboneRecord;
use crate::data::DataSpec;
use crate::ics::{
    CentreMethod, Centres, EpochLog, FinetuneMode, HashHead, IcsModel, InstanceWeights, Linear,
    TrainConfig,
};
use crate::tensorfile::{Format, Reader, Writer};

/// The model file's format: the version this trainer writes, the oldest it reads.
pub const FORMAT: Format = Format {
    name: "ics-train model",
    key: "ics_train.model",
    version: 3,
    oldest: 2,
    older_advice: "train the model again with this ics-train (`ics-train train`)",
};
/// First bytes of a version-1 file.
const V1_MAGIC: &[u8; 8] = b"ICSMODEL";

/// A fine-tuned backbone carried by the model file: the network's architecture, its
/// preprocessing, and every weight (BatchNorm folded), so later commands rebuild exactly the
/// network the head was trained with. The tensors are interpreted by `crate::finetune`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetunedRecord {
    pub architecture: Architecture,
    /// The fine-tuned network's description (the model contract's `backbone`).
    pub description: String,
    /// `top:N` or `all` (never `none`).
    pub mode: FinetuneMode,
    /// Input side S (the network takes N x 3 x S x S).
    pub image_size: u32,
    #[serde(with = "resize_name")]
    pub resize: ResizeMode,
    pub norm_mean: [f32; 3],
    pub norm_std: [f32; 3],
    /// (name, shape, values), stored as the tensors `backbone.{name}`.
    #[serde(skip)]
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// The tensor names, in order (the header's index of the `backbone.*` tensors).
    pub tensor_names: Vec<String>,
}

/// [`ResizeMode`] by its contract name (`shorter-side-center-crop`, `stretch`).
mod resize_name {
    use ics_encoder::preprocess::ResizeMode;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &ResizeMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ResizeMode, D::Error> {
        let name = String::deserialize(d)?;
        ResizeMode::parse(&name).ok_or_else(|| D::Error::custom(format!("resize mode {name:?}")))
    }
}

/// The description in the header (everything but the tensors).
#[derive(Serialize, Deserialize)]
pub struct Header {
    pub trainer_version: String,
    pub config: TrainConfig,
    /// Number of head layers (tensors `head.0` .. `head.{layers-1}`).
    pub layers: usize,
    pub dropout: f64,
    pub centre_method: CentreMethod,
    pub class_names: Vec<String>,
    pub history: Vec<EpochLog>,
    pub backbone: Option<BackboneRecord>,
    pub data: Option<DataSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetuned: Option<FinetunedRecord>,
}

/// A model with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub model: IcsModel,
    pub class_names: Vec<String>,
    /// The backbone file the model was trained from (for a fine-tuned model: the starting
    /// point; the network itself is [`ModelFile::finetuned`]).
    pub backbone: Option<BackboneRecord>,
    /// Where the model's data is (absolute paths when written by `ics-train train`, see
    /// [`DataSpec::absolute`]): later commands read the query/database splits from here, and
    /// the exporter samples training images.
    pub data: Option<DataSpec>,
    /// The fine-tuned backbone, for models trained with `--finetune top:N|all`.
    pub finetuned: Option<FinetunedRecord>,
}

impl ModelFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let m = &self.model;
        let header = Header {
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
        let w = m.weights();
        let mut labels = Array2::<u8>::zeros((w.len(), w.classes()));
        for i in 0..w.len() {
            for &k in w.labels(i) {
                labels[[i, k]] = 1;
            }
        }
        let mut file = Writer::new();
        for (i, l) in m.layers().iter().enumerate() {
            file.matrix(format!("head.{i}.weight"), l.weight())?;
            file.add(
                format!("head.{i}.bias"),
                &[l.outputs()],
                l.bias().iter().copied(),
            )?;
        }
        file.matrix("centres", m.centres().matrix())?
            .matrix("instance_weights", &w.matrix())?
            .matrix("instance_labels", &labels)?;
        for (name, shape, values) in self.finetuned.iter().flat_map(|f| &f.tensors) {
            file.add(format!("backbone.{name}"), shape, values.iter().copied())?;
        }
        Ok(file.to_bytes(&FORMAT, &header)?)
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
        if bytes.starts_with(V1_MAGIC) {
            let version = bytes
                .get(8..12)
                .map_or(1, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
            return Err(FORMAT.version_error(version).into());
        }
        let file = Reader::parse(bytes, &FORMAT)?;
        let header: Header = file.description()?;
        let mut layers = Vec::with_capacity(header.layers);
        for i in 0..header.layers {
            let weight = file.matrix::<f32>(&format!("head.{i}.weight"))?;
            let bias = file.vector::<f32>(&format!("head.{i}.bias"))?;
            layers
                .push(Linear::new(weight, bias.into()).with_context(|| format!("head layer {i}"))?);
        }
        let head = HashHead::from_layers(layers, header.dropout)?;
        let centres = Centres::from_matrix(header.centre_method, file.matrix("centres")?)
            .context("centres")?;
        let matrix = file.matrix::<f64>("instance_weights")?;
        let labels = file.matrix::<u8>("instance_labels")?;
        ensure!(
            matrix.dim() == labels.dim(),
            "damaged: instance_weights is {:?} but instance_labels {:?}",
            matrix.dim(),
            labels.dim()
        );
        let classes = matrix.ncols();
        let mut lists = Vec::with_capacity(matrix.nrows());
        for (i, row) in labels.rows().into_iter().enumerate() {
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
                        let (shape, values) = file.tensor::<f32>(&format!("backbone.{name}"))?;
                        Ok((name.clone(), shape, values))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ics::synthetic::make;
    use crate::ics::train_silently;
    use safetensors::SafeTensors;

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
            data: Some(DataSpec::composed("/data/bench")),
            finetuned: None,
        }
    }

    fn finetuned() -> FinetunedRecord {
        FinetunedRecord {
            architecture: Architecture::tiny(),
            description: "toy@8px fine-tuned top:1".into(),
            mode: FinetuneMode::Top(1),
            image_size: 8,
            resize: ResizeMode::Stretch,
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
        }
    }

    fn err(bytes: &[u8]) -> String {
        format!("{:#}", ModelFile::from_bytes(bytes).unwrap_err())
    }

    /// The description of a model file's bytes, as JSON.
    fn description(bytes: &[u8]) -> serde_json::Value {
        let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
        serde_json::from_str(&meta.metadata().as_ref().unwrap()[FORMAT.key]).unwrap()
    }

    /// `bytes` with the description's JSON edited by `edit` (the tensors unchanged).
    fn with_description(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut d = description(bytes);
        edit(&mut d);
        let metadata = std::collections::HashMap::from([(FORMAT.key.to_string(), d.to_string())]);
        safetensors::serialize(st.tensors(), Some(metadata)).unwrap()
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
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
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
        let d = description(&bytes);
        assert_eq!(
            (d["format"].as_str(), d["format_version"].as_u64()),
            (Some("ics-train model"), Some(3))
        );
    }

    /// A model file written by the trainer before the tensor-file module (format version 3,
    /// a fine-tuned backbone included) reads back, and writing it again gives the same file
    /// but for the trainer version.
    #[test]
    fn version_3_files_of_earlier_trainers_still_load() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/trainer/model-v3.icsm"
        );
        let old = std::fs::read(path).unwrap();
        let mf = ModelFile::from_bytes(&old).unwrap();
        let f = mf.finetuned.as_ref().unwrap();
        assert_eq!(f.architecture, Architecture::tiny());
        assert_eq!(
            (f.mode, f.resize),
            (FinetuneMode::Top(1), ResizeMode::Stretch)
        );
        assert_eq!(f.tensors, finetuned().tensors);
        assert_eq!(mf.data, Some(DataSpec::composed("/data/bench")));
        assert_eq!(mf.backbone, model_file().backbone);
        assert_eq!(mf.model.config().bits, 16);
        let new = mf.to_bytes().unwrap();
        let without_version = |bytes: &[u8]| {
            let mut d = description(bytes);
            d["trainer_version"] = serde_json::Value::Null;
            d
        };
        assert_eq!(without_version(&new), without_version(&old));
        let tensors = |bytes: &[u8]| -> Vec<(String, Vec<usize>, Vec<u8>)> {
            let st = SafeTensors::deserialize(bytes).unwrap();
            let mut t: Vec<_> = st
                .tensors()
                .into_iter()
                .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
                .collect();
            t.sort();
            t
        };
        assert_eq!(tensors(&new), tensors(&old));
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
        mf.finetuned = Some(finetuned());
        let bytes = mf.to_bytes().unwrap();
        let back = ModelFile::from_bytes(&bytes).unwrap();
        let f = back.finetuned.as_ref().unwrap();
        assert_eq!(f.tensors, finetuned().tensors);
        assert_eq!(f.tensor_names, vec!["head.weight", "head.bias"]);
        assert_eq!(f.description, "toy@8px fine-tuned top:1");
        // Typed records, written as their names.
        let d = description(&bytes);
        assert_eq!(d["finetuned"]["mode"], "top:1");
        assert_eq!(d["finetuned"]["resize"], "stretch");
        assert_eq!(d["finetuned"]["architecture"]["name"], "tiny-efficientnet");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("backbone.head.weight").unwrap().shape(),
            [2, 3, 1, 1]
        );
        // A missing backbone tensor is named, and so are unknown modes.
        let bad = with_description(&bytes, |d| {
            d["finetuned"]["tensor_names"] = serde_json::json!(["head.weight", "nope"])
        });
        assert!(
            err(&bad).contains("no tensor backbone.nope"),
            "{}",
            err(&bad)
        );
        let bad = with_description(&bytes, |d| d["finetuned"]["resize"] = "squash".into());
        assert!(
            err(&bad).contains("resize mode \"squash\""),
            "{}",
            err(&bad)
        );
        // A tensor whose shape does not match its values is refused when writing.
        mf.finetuned.as_mut().unwrap().tensors[1].1 = vec![3];
        let e = format!("{:#}", mf.to_bytes().unwrap_err());
        assert!(
            e.contains("tensor backbone.head.bias: shape [3] for 2 values"),
            "{e}"
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
        let plain = Writer::new()
            .add("x", &[1], [0f32])
            .unwrap()
            .to_bytes(
                &Format {
                    key: "other",
                    ..FORMAT
                },
                &(),
            )
            .unwrap();
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
}
