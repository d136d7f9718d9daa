//! The weights of an EfficientNet-Lite network with BatchNorm folded into its convolutions:
//! what the ONNX graph is built from, what fine-tuning trains, and what a fine-tuned model
//! file stores.
//!
//! Folding (eps 1e-3, TensorFlow's): `w' = w * g / sqrt(v + eps)`, `b' = beta - m * g /
//! sqrt(v + eps)`. After folding every convolution is `conv(x, w') + b'`, the same function in
//! training and in inference, so the exported graph computes exactly what was trained.
//!
//! Convolutions are named `stem`, `block{N}.expand`, `block{N}.depthwise`, `block{N}.project`
//! and `head`; their tensors `{name}.weight` (out, in/groups, k, k) and `{name}.bias` (out),
//! the initializer names of the ONNX graph. Sources: a PyTorch state dict (lukemelas naming,
//! [`NetworkWeights::from_state_dict`]), a graph this trainer wrote
//! ([`NetworkWeights::from_onnx`]), named tensors of a model file
//! ([`NetworkWeights::from_named`]), or seeded random values for tests.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};
use ics_encoder::onnx_proto::ModelProto;
use rand::{Rng, SeedableRng};

use super::architecture::{Architecture, BlockPlan};
use super::torch::StateDict;

/// BatchNorm epsilon of the TensorFlow-trained weights.
pub const BN_EPS: f32 = 1e-3;

/// One convolution after BatchNorm folding.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedConv {
    /// `stem`, `block3.expand`, ...: the ONNX initializer base name.
    pub name: String,
    /// (out, in/groups, k, k), row-major.
    pub weight: Vec<f32>,
    /// (out).
    pub bias: Vec<f32>,
    pub out: usize,
    pub in_per_group: usize,
    pub kernel: usize,
    pub stride: usize,
    /// 1, or the channel count for depthwise.
    pub groups: usize,
}

impl FoldedConv {
    /// The weight tensor's shape.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out, self.in_per_group, self.kernel, self.kernel]
    }

    fn check(&self) -> Result<()> {
        ensure!(
            self.weight.len() == self.weight_shape().iter().product::<usize>()
                && self.bias.len() == self.out,
            "{}: {} weights and {} biases for shape {:?}",
            self.name,
            self.weight.len(),
            self.bias.len(),
            self.weight_shape()
        );
        Ok(())
    }
}

/// One MBConv block's convolutions.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockWeights {
    pub plan: BlockPlan,
    pub expand: Option<FoldedConv>,
    pub depthwise: FoldedConv,
    pub project: FoldedConv,
}

/// The ImageNet classifier (kept for the `logits` output of imported backbones; fine-tuned
/// networks drop it).
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// (classes, features), row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Every weight of a network, folded.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkWeights {
    pub arch: Architecture,
    pub stem: FoldedConv,
    pub blocks: Vec<BlockWeights>,
    pub head: FoldedConv,
    pub classifier: Option<Classifier>,
}

/// The shape of each convolution of `arch`, in network order, with empty values.
/// The network of `arch` with every convolution's shape and no tensors yet (no classifier):
/// what each reader fills, in [`NetworkWeights::convs_mut`] order.
fn unfilled(arch: &Architecture) -> NetworkWeights {
    let conv = |name: String, out, in_per_group, kernel, stride, groups| FoldedConv {
        name,
        weight: Vec::new(),
        bias: Vec::new(),
        out,
        in_per_group,
        kernel,
        stride,
        groups,
    };
    let stem = conv("stem".into(), arch.stem_channels, 3, 3, 2, 1);
    let blocks = arch
        .blocks()
        .into_iter()
        .map(|p| {
            let h = p.hidden();
            let n = p.index;
            BlockWeights {
                plan: p,
                expand: (p.expansion != 1)
                    .then(|| conv(format!("block{n}.expand"), h, p.in_channels, 1, 1, 1)),
                depthwise: conv(format!("block{n}.depthwise"), h, 1, p.kernel, p.stride, h),
                project: conv(format!("block{n}.project"), p.out_channels, h, 1, 1, 1),
            }
        })
        .collect();
    let head = conv(
        "head".into(),
        arch.head_channels,
        arch.last_channels(),
        1,
        1,
        1,
    );
    NetworkWeights {
        arch: arch.clone(),
        stem,
        blocks,
        head,
        classifier: None,
    }
}

/// The lukemelas (PyTorch) names of a convolution and its BatchNorm.
fn torch_names(name: &str) -> (String, String) {
    if name == "stem" {
        return ("_conv_stem".into(), "_bn0".into());
    }
    if name == "head" {
        return ("_conv_head".into(), "_bn1".into());
    }
    let (block, part) = name.split_once('.').expect("blockN.part");
    let n = block.trim_start_matches("block");
    let (conv, bn) = match part {
        "expand" => ("_expand_conv", "_bn0"),
        "depthwise" => ("_depthwise_conv", "_bn1"),
        _ => ("_project_conv", "_bn2"),
    };
    (format!("_blocks.{n}.{conv}"), format!("_blocks.{n}.{bn}"))
}

fn state_tensor<'a>(sd: &'a StateDict, name: &str, shape: &[usize]) -> Result<&'a [f32]> {
    let t = sd
        .get(name)
        .with_context(|| format!("the weights have no tensor \"{name}\""))?;
    ensure!(
        t.shape == shape,
        "tensor {name} has shape {:?}, expected {shape:?}",
        t.shape
    );
    t.f32().with_context(|| name.to_string())
}

/// Folds the BatchNorm `bn` into `conv` (no conv bias in these weights), for the shape of `c`.
fn fold_into(sd: &StateDict, conv: &str, bn: &str, c: &mut FoldedConv) -> Result<()> {
    let w = state_tensor(sd, &format!("{conv}.weight"), &c.weight_shape())
        .with_context(|| format!("{conv} has an unexpected shape"))?;
    let out = c.out;
    let gamma = state_tensor(sd, &format!("{bn}.weight"), &[out])?;
    let beta = state_tensor(sd, &format!("{bn}.bias"), &[out])?;
    let mean = state_tensor(sd, &format!("{bn}.running_mean"), &[out])?;
    let var = state_tensor(sd, &format!("{bn}.running_var"), &[out])?;
    let per_out = c.in_per_group * c.kernel * c.kernel;
    c.weight = w.to_vec();
    c.bias = vec![0f32; out];
    for o in 0..out {
        // f64 for the fold itself: the only rounding is the final cast.
        let scale = f64::from(gamma[o]) / (f64::from(var[o]) + f64::from(BN_EPS)).sqrt();
        for v in &mut c.weight[o * per_out..(o + 1) * per_out] {
            *v = (f64::from(*v) * scale) as f32;
        }
        c.bias[o] = (f64::from(beta[o]) - f64::from(mean[o]) * scale) as f32;
    }
    Ok(())
}

impl NetworkWeights {
    /// Every convolution in network order (stem, blocks, head).
    pub fn convs(&self) -> Vec<&FoldedConv> {
        let mut v = vec![&self.stem];
        for b in &self.blocks {
            v.extend(b.expand.as_ref());
            v.push(&b.depthwise);
            v.push(&b.project);
        }
        v.push(&self.head);
        v
    }

    /// The same, mutable.
    pub fn convs_mut(&mut self) -> Vec<&mut FoldedConv> {
        let mut v = vec![&mut self.stem];
        for b in &mut self.blocks {
            v.extend(b.expand.as_mut());
            v.push(&mut b.depthwise);
            v.push(&mut b.project);
        }
        v.push(&mut self.head);
        v
    }

    /// Number of convolution parameters (weights and biases, classifier excluded).
    pub fn parameter_count(&self) -> usize {
        self.convs()
            .iter()
            .map(|c| c.weight.len() + c.bias.len())
            .sum()
    }

    /// Checks every tensor has its shape's number of values.
    pub fn check(&self) -> Result<()> {
        self.arch.validate()?;
        for c in self.convs() {
            c.check()?;
        }
        if let Some(c) = &self.classifier {
            ensure!(
                !c.bias.is_empty() && c.weight.len() == c.bias.len() * self.arch.head_channels,
                "classifier: {} weights for {} classes of {} features",
                c.weight.len(),
                c.bias.len(),
                self.arch.head_channels
            );
        }
        Ok(())
    }

    /// Folds a lukemelas-named PyTorch state dict of `arch` (e.g. EfficientNet-Lite0's `.pth`).
    pub fn from_state_dict(sd: &StateDict, arch: &Architecture) -> Result<NetworkWeights> {
        arch.validate()?;
        let mut w = unfilled(arch);
        for conv in w.convs_mut() {
            let (c, b) = torch_names(&conv.name);
            fold_into(sd, &c, &b, conv)?;
        }
        ensure!(
            !sd.contains_key(&format!("_blocks.{}._project_conv.weight", w.blocks.len())),
            "the weights have more than {} blocks: not {}",
            w.blocks.len(),
            arch.name
        );
        w.classifier = match sd.get("_fc.bias") {
            Some(t) => {
                let classes = t.shape.first().copied().unwrap_or(0);
                Some(Classifier {
                    weight: state_tensor(sd, "_fc.weight", &[classes, arch.head_channels])?
                        .to_vec(),
                    bias: state_tensor(sd, "_fc.bias", &[classes])?.to_vec(),
                })
            }
            None => None,
        };
        w.check()?;
        Ok(w)
    }

    /// Reads the folded weights back from a graph built by [`super::efficientnet`] for `arch`
    /// (its initializers `{conv}.weight` / `{conv}.bias`).
    pub fn from_onnx(model: &ModelProto, arch: &Architecture) -> Result<NetworkWeights> {
        let graph = model.graph()?;
        let inits: HashMap<&str, _> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = inits.get(name).with_context(|| {
                format!(
                    "the graph has no initializer \"{name}\": not a {} graph",
                    arch.name
                )
            })?;
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            ensure!(
                dims == shape,
                "initializer {name} has shape {dims:?}, {} needs {shape:?}",
                arch.name
            );
            t.to_f32()
                .map_err(|e| anyhow::anyhow!("initializer {name}: {e}"))
        };
        let mut named = Vec::new();
        for c in unfilled(arch).convs() {
            let w = format!("{}.weight", c.name);
            let b = format!("{}.bias", c.name);
            named.push((w.clone(), read(&w, &c.weight_shape())?));
            named.push((b.clone(), read(&b, &[c.out])?));
        }
        let mut w = Self::from_named(arch, named)?;
        if let Some(fb) = inits.get("fc.bias") {
            let classes = fb.element_count();
            w.classifier = Some(Classifier {
                weight: read("fc.weight", &[classes, arch.head_channels])?,
                bias: read("fc.bias", &[classes])?,
            });
            w.check()?;
        }
        Ok(w)
    }

    /// The convolution tensors by name (`{conv}.weight`, `{conv}.bias`), in network order;
    /// the classifier is not included.
    pub fn to_named(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        for c in self.convs() {
            out.push((
                format!("{}.weight", c.name),
                c.weight_shape().to_vec(),
                c.weight.clone(),
            ));
            out.push((format!("{}.bias", c.name), vec![c.out], c.bias.clone()));
        }
        out
    }

    /// Weights of `arch` from named tensors (what [`NetworkWeights::to_named`] gives; extra
    /// names are an error, missing ones too).
    pub fn from_named(
        arch: &Architecture,
        tensors: impl IntoIterator<Item = (String, Vec<f32>)>,
    ) -> Result<NetworkWeights> {
        arch.validate()?;
        let mut map: HashMap<String, Vec<f32>> = tensors.into_iter().collect();
        let mut w = unfilled(arch);
        for c in w.convs_mut() {
            let take = |map: &mut HashMap<String, Vec<f32>>, key: String| {
                map.remove(&key)
                    .with_context(|| format!("no tensor {key} for {}", arch.name))
            };
            c.weight = take(&mut map, format!("{}.weight", c.name))?;
            c.bias = take(&mut map, format!("{}.bias", c.name))?;
        }
        if let Some(extra) = map.keys().next() {
            bail!("tensor {extra} is not part of {}", arch.name);
        }
        w.check()?;
        Ok(w)
    }

    /// Seeded random weights (He-uniform convolutions, small biases), for tests.
    pub fn random(arch: &Architecture, seed: u64) -> NetworkWeights {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut w = unfilled(arch);
        for c in w.convs_mut() {
            let fan_in = (c.in_per_group * c.kernel * c.kernel) as f32;
            let bound = (6.0 / fan_in).sqrt();
            c.weight = (0..c.weight_shape().iter().product::<usize>())
                .map(|_| rng.gen_range(-bound..bound))
                .collect();
            c.bias = (0..c.out).map(|_| rng.gen_range(-0.1..0.1)).collect();
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::torch::{Tensor, TensorData};

    fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    #[test]
    fn batchnorm_folding() {
        let mut sd = StateDict::new();
        // Two output channels, 1 input, 1x1 kernel: weights 2 and -1.
        sd.insert("c.weight".into(), t(&[2, 1, 1, 1], vec![2.0, -1.0]));
        sd.insert("bn.weight".into(), t(&[2], vec![3.0, 1.0]));
        sd.insert("bn.bias".into(), t(&[2], vec![0.5, 0.0]));
        sd.insert("bn.running_mean".into(), t(&[2], vec![1.0, -2.0]));
        sd.insert(
            "bn.running_var".into(),
            t(&[2], vec![4.0 - BN_EPS, 1.0 - BN_EPS]),
        );
        let mut f = FoldedConv {
            name: "c".into(),
            weight: vec![],
            bias: vec![],
            out: 2,
            in_per_group: 1,
            kernel: 1,
            stride: 1,
            groups: 1,
        };
        fold_into(&sd, "c", "bn", &mut f).unwrap();
        // scale = gamma / sqrt(var + eps) = 3/2 and 1.
        assert!((f.weight[0] - 3.0).abs() < 1e-6 && (f.weight[1] + 1.0).abs() < 1e-6);
        assert!((f.bias[0] - (0.5 - 1.5)).abs() < 1e-6 && (f.bias[1] - 2.0).abs() < 1e-6);
        // For any input x: BN(conv(x)) == folded(x).
        let bn = |y: f32, g: f32, b: f32, m: f32, v: f32| g * (y - m) / (v + BN_EPS).sqrt() + b;
        for x in [-1.5f32, 0.0, 2.0] {
            let want0 = bn(2.0 * x, 3.0, 0.5, 1.0, 4.0 - BN_EPS);
            let want1 = bn(-x, 1.0, 0.0, -2.0, 1.0 - BN_EPS);
            assert!((f.weight[0] * x + f.bias[0] - want0).abs() < 1e-5);
            assert!((f.weight[1] * x + f.bias[1] - want1).abs() < 1e-5);
        }
        sd.insert("bn.bias".into(), t(&[3], vec![0.0; 3]));
        assert!(fold_into(&sd, "c", "bn", &mut f).is_err());
        assert!(fold_into(&sd, "missing", "bn", &mut f).is_err());
    }

    #[test]
    fn named_tensors_round_trip_and_are_checked() {
        let arch = Architecture::tiny();
        let w = NetworkWeights::random(&arch, 3);
        w.check().unwrap();
        let named = w.to_named();
        assert_eq!(named[0].0, "stem.weight");
        assert_eq!(named[0].1, vec![4, 3, 3, 3]);
        let back =
            NetworkWeights::from_named(&arch, named.iter().map(|(n, _, v)| (n.clone(), v.clone())))
                .unwrap();
        assert_eq!(back, w);
        // A missing tensor, an extra one, a wrong length: errors naming the tensor.
        let mut missing: Vec<(String, Vec<f32>)> = named
            .iter()
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect();
        missing.remove(3);
        let e = NetworkWeights::from_named(&arch, missing.clone()).unwrap_err();
        assert!(e.to_string().contains("no tensor"), "{e}");
        let mut extra = missing.clone();
        extra.push((named[3].0.clone(), named[3].2.clone()));
        extra.push(("block9.expand.weight".into(), vec![0.0]));
        let e = NetworkWeights::from_named(&arch, extra).unwrap_err();
        assert!(e.to_string().contains("block9.expand.weight"), "{e}");
        let mut short: Vec<(String, Vec<f32>)> = named
            .iter()
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect();
        short[0].1.pop();
        assert!(NetworkWeights::from_named(&arch, short).is_err());
    }

    #[test]
    fn torch_names_follow_lukemelas() {
        assert_eq!(
            torch_names("block3.depthwise"),
            ("_blocks.3._depthwise_conv".into(), "_blocks.3._bn1".into())
        );
        assert_eq!(torch_names("head"), ("_conv_head".into(), "_bn1".into()));
        assert_eq!(torch_names("stem"), ("_conv_stem".into(), "_bn0".into()));
    }
}
