//! The shape of an EfficientNet-Lite network as data: stem, MBConv stages, head convolution.
//!
//! One description serves the ONNX graph builder ([`super::efficientnet`]), the folded weights
//! ([`super::folded`]) and the trainable network of `crate::finetune`, so the three can never
//! disagree about a stride or a residual. [`Architecture::lite0`] is EfficientNet-Lite0;
//! [`Architecture::tiny`] is a network of the same kind small enough for gradient checks.
//!
//! Blocks are numbered globally (`block0` .. `block15` in Lite0), stages from 1 (`stage 1` ..
//! `stage 7`); the head convolution comes after the last stage. [`Architecture::boundary`]
//! names the ONNX value between two stages, where a fine-tuning run cuts the network into a
//! frozen part (run once, cached) and a trained part.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

/// One MBConv stage: `repeats` blocks, the first with `stride`, the others stride 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub repeats: usize,
    /// Depthwise kernel size (odd).
    pub kernel: usize,
    /// Stride of the stage's first block (1 or 2).
    pub stride: usize,
    /// Expansion factor of the 1x1 expand convolution (1: no expand convolution).
    pub expansion: usize,
    /// Output channels.
    pub channels: usize,
}

/// An EfficientNet-Lite network's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Name used in descriptions and errors (`efficientnet-lite0`).
    pub name: String,
    /// Output channels of the 3x3 stride-2 stem convolution.
    pub stem_channels: usize,
    pub stages: Vec<Stage>,
    /// Output channels of the 1x1 head convolution: the feature width.
    pub head_channels: usize,
}

/// One MBConv block as the builders need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPlan {
    /// Global block index (the `N` of `_blocks.N` and `blockN`).
    pub index: usize,
    /// Stage number, from 1.
    pub stage: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expansion: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

impl BlockPlan {
    /// Channels inside the block (after the expand convolution).
    pub fn hidden(&self) -> usize {
        self.in_channels * self.expansion
    }
    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }
}

impl Architecture {
    /// EfficientNet-Lite0: stem 32, stages (repeats, kernel, first stride, expansion, out)
    /// (1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80) (3,5,1,6,112) (4,5,2,6,192)
    /// (1,3,1,6,320), head 1280.
    pub fn lite0() -> Architecture {
        let s = |repeats, kernel, stride, expansion, channels| Stage {
            repeats,
            kernel,
            stride,
            expansion,
            channels,
        };
        Architecture {
            name: "efficientnet-lite0".into(),
            stem_channels: 32,
            stages: vec![
                s(1, 3, 1, 1, 16),
                s(2, 3, 2, 6, 24),
                s(2, 5, 2, 6, 40),
                s(3, 3, 2, 6, 80),
                s(3, 5, 1, 6, 112),
                s(4, 5, 2, 6, 192),
                s(1, 3, 1, 6, 320),
            ],
            head_channels: 1280,
        }
    }

    /// A small network of the same kind (stride-2 stem, an expansion-1 stage, 3x3 and 5x5
    /// depthwise convolutions with stride 2 and residual blocks), for tests: a few hundred
    /// parameters, runs on 16 px images in milliseconds.
    pub fn tiny() -> Architecture {
        let s = |repeats, kernel, stride, expansion, channels| Stage {
            repeats,
            kernel,
            stride,
            expansion,
            channels,
        };
        Architecture {
            name: "tiny-efficientnet".into(),
            stem_channels: 4,
            stages: vec![s(1, 3, 1, 1, 4), s(2, 5, 2, 2, 6), s(1, 3, 2, 2, 8)],
            head_channels: 12,
        }
    }

    /// The architectures the trainer knows by name: [`Architecture::lite0`] and
    /// [`Architecture::tiny`] (tests).
    pub fn known(name: &str) -> Option<Architecture> {
        [Architecture::lite0(), Architecture::tiny()]
            .into_iter()
            .find(|a| a.name == name)
    }

    /// Checks the numbers are a network the builders can make.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.stem_channels >= 1 && self.head_channels >= 1,
            "{}: zero channels",
            self.name
        );
        ensure!(!self.stages.is_empty(), "{}: no stages", self.name);
        for (i, s) in self.stages.iter().enumerate() {
            ensure!(
                s.repeats >= 1
                    && s.kernel % 2 == 1
                    && (1..=2).contains(&s.stride)
                    && s.expansion >= 1
                    && s.channels >= 1,
                "{}: stage {} {s:?} is not a valid MBConv stage",
                self.name,
                i + 1
            );
        }
        Ok(())
    }

    /// Number of MBConv stages.
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Every block in order.
    pub fn blocks(&self) -> Vec<BlockPlan> {
        let mut out = Vec::new();
        let mut channels = self.stem_channels;
        for (si, s) in self.stages.iter().enumerate() {
            for r in 0..s.repeats {
                out.push(BlockPlan {
                    index: out.len(),
                    stage: si + 1,
                    kernel: s.kernel,
                    stride: if r == 0 { s.stride } else { 1 },
                    expansion: s.expansion,
                    in_channels: channels,
                    out_channels: s.channels,
                });
                channels = s.channels;
            }
        }
        out
    }

    /// Channels of the last stage's output (the head convolution's input).
    pub fn last_channels(&self) -> usize {
        self.stages
            .last()
            .map_or(self.stem_channels, |s| s.channels)
    }

    /// The activation entering stage `stage` (1-based; `stage_count() + 1` is the head
    /// convolution's input): its ONNX value name, channels and spatial size for `size` px
    /// inputs. Stage 1's input is the stem's output.
    pub fn boundary(&self, stage: usize, size: usize) -> Boundary {
        assert!(
            (1..=self.stage_count() + 1).contains(&stage),
            "stage {stage} of {}",
            self.stage_count()
        );
        let mut spatial = size.div_ceil(2); // the stem
        let mut value = "stem.act".to_string();
        let mut channels = self.stem_channels;
        for b in self.blocks().iter().filter(|b| b.stage < stage) {
            spatial = spatial.div_ceil(b.stride);
            channels = b.out_channels;
            value = if b.residual() {
                format!("block{}.add", b.index)
            } else {
                format!("block{}.project", b.index)
            };
        }
        Boundary {
            stage,
            value,
            channels,
            spatial,
        }
    }
}

/// The activation between the frozen and the trained part of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// The stage it enters (1-based).
    pub stage: usize,
    /// The ONNX value holding it in graphs of [`super::efficientnet`].
    pub value: String,
    pub channels: usize,
    /// Height = width.
    pub spatial: usize,
}

impl Boundary {
    /// Values per image (C x H x W).
    pub fn len(&self) -> usize {
        self.channels * self.spatial * self.spatial
    }
    /// Whether it holds no values (never for a valid architecture).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// TensorFlow SAME padding on one axis: (output size, pad before, pad after).
/// `out = ceil(in / s)`, `total = max((out - 1) * s + k - in, 0)`, `total / 2` before and the
/// rest after (asymmetric for stride 2 on even sizes).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (out, total / 2, total - total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_blocks_and_boundaries() {
        let a = Architecture::lite0();
        a.validate().unwrap();
        let blocks = a.blocks();
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks.iter().filter(|b| b.residual()).count(), 9);
        assert_eq!(
            (
                blocks[15].in_channels,
                blocks[15].hidden(),
                blocks[15].stage
            ),
            (192, 1152, 7)
        );
        // At 128 px: stem 64, then strides 1,2,2,2,1,2,1.
        let b = a.boundary(1, 128);
        assert_eq!(
            (b.value.as_str(), b.channels, b.spatial),
            ("stem.act", 32, 64)
        );
        let b = a.boundary(6, 128);
        assert_eq!(
            (b.value.as_str(), b.channels, b.spatial),
            ("block10.add", 112, 8)
        );
        assert_eq!(b.len(), 112 * 64);
        let b = a.boundary(7, 128);
        assert_eq!(
            (b.value.as_str(), b.channels, b.spatial),
            ("block14.add", 192, 4)
        );
        let b = a.boundary(8, 128);
        assert_eq!(
            (b.value.as_str(), b.channels, b.spatial),
            ("block15.project", 320, 4)
        );
        Architecture::tiny().validate().unwrap();
        let bad = Architecture {
            stages: vec![],
            ..Architecture::tiny()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        // Even input, stride 2, k 3: one pixel after, none before.
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        // k 5 stride 2 on 28: out 14, total 3 -> 1 before, 2 after.
        assert_eq!(same_padding(28, 5, 2), (14, 1, 2));
        // Odd input, stride 2, k 3: out 4, total 2 -> 1 and 1.
        assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
        // Stride 1 keeps the size: k 5 -> 2 and 2; k 1 -> none.
        assert_eq!(same_padding(14, 5, 1), (14, 2, 2));
        assert_eq!(same_padding(14, 1, 1), (14, 0, 0));
        // A kernel smaller than the stride never pads negatively.
        assert_eq!(same_padding(8, 1, 2), (4, 0, 0));
    }
}
