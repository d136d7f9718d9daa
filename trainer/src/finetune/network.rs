//! The trained part of an EfficientNet-Lite network as burn tensor operations, so that burn's
//! autodiff back-propagates through it (depthwise and grouped convolutions included).
//!
//! The operations are the ONNX graph's ([`crate::backbone::efficientnet`]), one for one:
//! convolution with the folded BatchNorm as its bias, TensorFlow SAME padding (an explicit
//! zero pad when it is asymmetric, i.e. stride 2 on even sizes), ReLU6 as `clamp(0, 6)`, the
//! residual add, global average pooling. Frozen BatchNorm (see `ics::Finetune`) is what makes
//! the network a plain function of its convolution weights and biases.
//!
//! The network's values live on the host as [`NetworkWeights`] (what the optimiser updates,
//! checkpoints keep and the exporter writes); [`NetworkTensors::upload`] puts the trained
//! convolutions on a device for one forward pass, tracked for gradients or not. Generic over
//! the element type: training runs in `f32`, the finite-difference check in `f64`.

use super::engine::{Engine, Real};
use crate::backbone::architecture::same_padding;
use crate::backbone::folded::{FoldedConv, NetworkWeights};

pub use super::engine::{tensor, to_vec};

/// Where the trained part of a network begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the image: the stem and everything after it train.
    Image,
    /// At the input of MBConv stage `s` (1-based; the stage count + 1 is the head
    /// convolution's input): the stages from `s` on and the head convolution train.
    Stage(usize),
}

impl Start {
    /// Whether convolution `conv` of `w` belongs to the part starting here.
    fn includes(self, w: &NetworkWeights, conv: &FoldedConv) -> bool {
        match self {
            Start::Image => true,
            Start::Stage(s) => {
                if conv.name == "stem" {
                    return false;
                }
                if conv.name == "head" {
                    return true;
                }
                w.blocks.iter().any(|b| {
                    b.plan.stage >= s
                        && (b.depthwise.name == conv.name
                            || b.project.name == conv.name
                            || b.expand.as_ref().is_some_and(|e| e.name == conv.name))
                })
            }
        }
    }
}

/// The names of the convolutions the part starting at `start` holds, in network order.
pub fn trained_convs(w: &NetworkWeights, start: Start) -> Vec<String> {
    w.convs()
        .into_iter()
        .filter(|c| start.includes(w, c))
        .map(|c| c.name.clone())
        .collect()
}

/// One convolution on a device.
struct ConvTensors<G: Engine> {
    weight: G::T4,
    bias: G::T1,
    kernel: usize,
    stride: usize,
    groups: usize,
}

impl<G: Engine> ConvTensors<G> {
    /// `conv(x) + bias` with SAME padding.
    fn apply(&self, x: G::T4) -> G::T4 {
        let [_, _, h, w] = G::dims4(&x);
        debug_assert_eq!(h, w, "square activations");
        let (_, before, after) = same_padding(h, self.kernel, self.stride);
        let (x, pad) = if before == after {
            (x, before)
        } else {
            // Asymmetric: pad explicitly (left, right, top, bottom), then a valid convolution.
            (G::pad(x, (before, after, before, after)), 0)
        };
        G::conv2d(x, &self.weight, &self.bias, self.stride, pad, self.groups)
    }
}

/// The trained part of a network on a device `G` (a burn device, see [`Engine`]), ready for
/// a forward pass.
pub struct NetworkTensors<G: Engine = burn::tensor::Device> {
    start: Start,
    /// Convolutions of the part, in network order, by name.
    convs: Vec<(String, ConvTensors<G>)>,
    /// (block stage, expand?, depthwise, project, residual) by convolution names.
    plan: Vec<BlockOps>,
}

struct BlockOps {
    stage: usize,
    expand: Option<String>,
    depthwise: String,
    project: String,
    residual: bool,
}

impl<G: Engine> NetworkTensors<G> {
    /// Puts the convolutions of `w` from `start` on `device`, their values given by `values`
    /// (e.g. the host weights themselves, converted to `T`), tracked for gradients when
    /// `track` (on an autodiff device).
    pub fn upload<T: Real>(
        w: &NetworkWeights,
        start: Start,
        values: impl Fn(&FoldedConv) -> (Vec<T>, Vec<T>),
        device: &G,
        track: bool,
    ) -> NetworkTensors<G> {
        let convs = w
            .convs()
            .into_iter()
            .filter(|c| start.includes(w, c))
            .map(|c| {
                let (wv, bv) = values(c);
                let mut weight = device.tensor4::<T>(wv, c.weight_shape());
                let mut bias = device.tensor1::<T>(bv, c.out);
                if track {
                    weight = G::track4(weight);
                    bias = G::track1(bias);
                }
                (
                    c.name.clone(),
                    ConvTensors {
                        weight,
                        bias,
                        kernel: c.kernel,
                        stride: c.stride,
                        groups: c.groups,
                    },
                )
            })
            .collect();
        let plan = w
            .blocks
            .iter()
            .map(|b| BlockOps {
                stage: b.plan.stage,
                expand: b.expand.as_ref().map(|e| e.name.clone()),
                depthwise: b.depthwise.name.clone(),
                project: b.project.name.clone(),
                residual: b.plan.residual(),
            })
            .collect();
        NetworkTensors { start, convs, plan }
    }

    /// Puts the host weights themselves (`f32`) on `device`.
    pub fn upload_f32(w: &NetworkWeights, start: Start, device: &G, track: bool) -> Self {
        Self::upload(
            w,
            start,
            |c| (c.weight.clone(), c.bias.clone()),
            device,
            track,
        )
    }

    fn conv(&self, name: &str) -> &ConvTensors<G> {
        &self
            .convs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("convolution {name} is not in the trained part"))
            .1
    }

    /// Features (N x head channels) of `x`: images (N x 3 x S x S, preprocessed) when the
    /// part starts at the image, else the activations entering the first trained stage.
    pub fn forward(&self, x: G::T4) -> G::T2 {
        let mut x = x;
        let first_stage = match self.start {
            Start::Image => {
                x = G::relu6(self.conv("stem").apply(x));
                1
            }
            Start::Stage(s) => s,
        };
        for b in self.plan.iter().filter(|b| b.stage >= first_stage) {
            let input = x.clone();
            let mut h = x;
            if let Some(e) = &b.expand {
                h = G::relu6(self.conv(e).apply(h));
            }
            h = G::relu6(self.conv(&b.depthwise).apply(h));
            h = self.conv(&b.project).apply(h);
            x = if b.residual { G::add(h, input) } else { h };
        }
        let y = G::relu6(self.conv("head").apply(x));
        G::pool(y)
    }

    /// The gradients of every convolution of the part (weight, bias), in network order, by
    /// name; zeros where the loss does not depend on a value.
    pub fn gradients<T: Real>(&self, grads: &G::Grads) -> Vec<(String, Vec<T>, Vec<T>)> {
        self.convs
            .iter()
            .map(|(name, c)| {
                let wg = G::grad4::<T>(&c.weight, grads)
                    .unwrap_or_else(|| vec![T::ZERO; G::dims4(&c.weight).iter().product()]);
                let bg = G::grad1::<T>(&c.bias, grads).unwrap_or_else(|| {
                    let [out, ..] = G::dims4(&c.weight);
                    vec![T::ZERO; out]
                });
                (name.clone(), wg, bg)
            })
            .collect()
    }
}
