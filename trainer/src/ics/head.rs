//! The hash head: a small MLP from backbone features to `K` outputs in (−1, 1), with
//! hand-written forward and backward passes.
//!
//! Layout (what the ONNX exporter writes as Gemm nodes): layer `i` computes
//! `y = x · W_i + b_i` with `W_i` of shape **(in, out)** (row-major; ONNX `Gemm` with
//! `transB = 0`, or `W_iᵀ` with `transB = 1`) and `b_i` of shape (out). Every layer but the
//! last is followed by ReLU (and, in training only, inverted dropout, so inference needs no
//! rescaling: dropout is the identity in the exported graph); the last is followed by tanh.
//! With no hidden layers the head is the single linear map `d -> K` then tanh.
//!
//! Everything is generic over [`Real`] so that the gradient checks run this exact code in
//! `f64` while training runs it in `f32`.

use anyhow::{ensure, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::matmul::{matmul, matmul_nt, matmul_tn};
use super::real::Real;

/// The non-linearity after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`: after every hidden layer.
    Relu,
    /// `tanh(x)`: after the last layer, giving the relaxed code `u`.
    Tanh,
}

/// One fully connected layer, `y = x · W + b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear<T> {
    /// (in, out).
    weight: Array2<T>,
    /// (out).
    bias: Array1<T>,
}

impl<T: Real> Linear<T> {
    /// A layer from a weight of shape (in, out) and a bias of shape (out).
    pub fn new(weight: Array2<T>, bias: Array1<T>) -> Result<Linear<T>> {
        ensure!(
            weight.ncols() == bias.len(),
            "layer weight has {} outputs but bias has {}",
            weight.ncols(),
            bias.len()
        );
        ensure!(weight.nrows() >= 1 && weight.ncols() >= 1, "empty layer");
        Ok(Linear {
            weight: weight.as_standard_layout().into_owned(),
            bias,
        })
    }
    /// (in, out), row-major.
    pub fn weight(&self) -> &Array2<T> {
        &self.weight
    }
    /// (out).
    pub fn bias(&self) -> &Array1<T> {
        &self.bias
    }
    pub fn inputs(&self) -> usize {
        self.weight.nrows()
    }
    pub fn outputs(&self) -> usize {
        self.weight.ncols()
    }
}

/// `x · W + b` for a batch `x` of shape (batch, in).
pub fn linear_forward<T: Real>(x: ArrayView2<T>, w: ArrayView2<T>, b: ArrayView1<T>) -> Array2<T> {
    let mut y = matmul(x, w);
    y += &b;
    y
}

/// Gradients of `x · W + b` given `dy = ∂L/∂y`: `(∂L/∂W = xᵀ dy, ∂L/∂b = Σ_rows dy,
/// ∂L/∂x = dy Wᵀ)`, the last only when asked for.
pub fn linear_backward<T: Real>(
    x: ArrayView2<T>,
    w: ArrayView2<T>,
    dy: ArrayView2<T>,
    want_dx: bool,
) -> (Array2<T>, Array1<T>, Option<Array2<T>>) {
    let dw = matmul_tn(x, dy);
    let db = dy.sum_axis(Axis(0));
    let dx = want_dx.then(|| matmul_nt(dy, w));
    (dw, db, dx)
}

/// ReLU followed by inverted dropout: each unit kept with probability `1 − p` and scaled by
/// `1/(1 − p)`; `rng = None` (or `p = 0`) is plain ReLU.
pub fn relu_dropout_forward<T: Real>(
    h: &mut Array2<T>,
    p: f64,
    rng: Option<&mut (dyn rand::RngCore + '_)>,
) {
    match rng {
        Some(rng) if p > 0.0 => {
            let scale = T::from_f64(1.0 / (1.0 - p));
            // Row-major order: the mask is a pure function of the generator's state.
            for x in h.iter_mut() {
                let keep = rng.gen::<f64>() >= p;
                *x = if keep && *x > T::zero() {
                    *x * scale
                } else {
                    T::zero()
                };
            }
        }
        _ => h.mapv_inplace(|x| x.max(T::zero())),
    }
}

/// Backward of [`relu_dropout_forward`] from its output `y`: a unit passed gradient iff it is
/// positive in `y` (positive pre-activation and kept), and then with the factor `scale`
/// (`1/(1 − p)` in training with dropout, else 1).
pub fn relu_dropout_backward<T: Real>(y: ArrayView2<T>, dy: ArrayView2<T>, scale: T) -> Array2<T> {
    Zip::from(&y)
        .and(&dy)
        .map_collect(|&y, &d| if y > T::zero() { d * scale } else { T::zero() })
}

/// Backward of `u = tanh(z)` from its output: `∂L/∂z = ∂L/∂u · (1 − u²)`.
pub fn tanh_backward<T: Real>(u: ArrayView2<T>, du: ArrayView2<T>) -> Array2<T> {
    Zip::from(&u)
        .and(&du)
        .map_collect(|&u, &d| d * (T::one() - u * u))
}

/// The layers of a hash head and the dropout rate used in training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HashHead<T> {
    layers: Vec<Linear<T>>,
    dropout: f64,
}

/// What a training forward pass keeps for the backward pass.
#[derive(Clone, Debug)]
pub struct ForwardCache<T> {
    /// Input of each layer (layer 0: the features; layer i > 0: the ReLU/dropout output).
    inputs: Vec<Array2<T>>,
    /// Whether dropout was applied (it then scales the ReLU backward).
    dropout_on: bool,
    /// Logits of the last layer, (batch, K).
    pub z: Array2<T>,
    /// `tanh(z)`: the relaxed codes.
    pub u: Array2<T>,
}

/// Gradients of every layer, in layer order.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads<T> {
    pub weight: Vec<Array2<T>>,
    pub bias: Vec<Array1<T>>,
}

impl<T: Real> HashHead<T> {
    /// A freshly initialised head `input -> hidden... -> bits`: hidden layers Kaiming-uniform
    /// (`±√(6/fan_in)`, right for ReLU), the last layer Xavier-uniform
    /// (`±√(6/(fan_in + fan_out))`, right for tanh), biases 0.
    pub fn new(
        input: usize,
        hidden: &[usize],
        bits: usize,
        dropout: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let mut widths = vec![input];
        widths.extend_from_slice(hidden);
        widths.push(bits);
        let last = widths.len() - 2;
        let layers = (0..=last)
            .map(|i| {
                let (fan_in, fan_out) = (widths[i], widths[i + 1]);
                let bound = if i < last {
                    (6.0 / fan_in as f64).sqrt()
                } else {
                    (6.0 / (fan_in + fan_out) as f64).sqrt()
                };
                let weight = Array2::from_shape_simple_fn((fan_in, fan_out), || {
                    T::from_f64(rng.gen_range(-bound..bound))
                });
                Linear {
                    weight,
                    bias: Array1::zeros(fan_out),
                }
            })
            .collect();
        HashHead { layers, dropout }
    }

    /// A head from existing layers (shapes must chain).
    pub fn from_layers(layers: Vec<Linear<T>>, dropout: f64) -> Result<Self> {
        ensure!(!layers.is_empty(), "a head needs at least one layer");
        for (i, pair) in layers.windows(2).enumerate() {
            ensure!(
                pair[0].outputs() == pair[1].inputs(),
                "layer {i} has {} outputs but layer {} takes {} inputs",
                pair[0].outputs(),
                i + 1,
                pair[1].inputs()
            );
        }
        ensure!(
            (0.0..1.0).contains(&dropout),
            "dropout {dropout} must be in [0, 1)"
        );
        Ok(HashHead { layers, dropout })
    }

    /// The layers in order; see the module docs for the layout.
    pub fn layers(&self) -> &[Linear<T>] {
        &self.layers
    }
    /// The activation after layer `i`: ReLU for hidden layers, tanh for the last.
    pub fn activation(&self, i: usize) -> Activation {
        assert!(i < self.layers.len());
        if i + 1 == self.layers.len() {
            Activation::Tanh
        } else {
            Activation::Relu
        }
    }
    /// Feature dimension d.
    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs()
    }
    /// Code length K.
    pub fn bits(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs()
    }
    pub fn dropout(&self) -> f64 {
        self.dropout
    }
    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum()
    }

    /// Inference: `tanh` outputs for a batch (batch, d) -> (batch, K). No dropout.
    pub fn forward(&self, x: ArrayView2<T>) -> Array2<T> {
        let mut h = linear_forward(x, self.layers[0].weight.view(), self.layers[0].bias.view());
        for layer in &self.layers[1..] {
            h.mapv_inplace(|v| v.max(T::zero()));
            h = linear_forward(h.view(), layer.weight.view(), layer.bias.view());
        }
        h.mapv_inplace(|v| v.tanh());
        h
    }

    /// Training forward pass keeping what backward needs; dropout applied when `rng` is given.
    pub fn forward_train(
        &self,
        x: Array2<T>,
        mut rng: Option<&mut dyn rand::RngCore>,
    ) -> ForwardCache<T> {
        let dropout_on = rng.is_some() && self.dropout > 0.0;
        let mut inputs = vec![x];
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let mut h = linear_forward(inputs[i].view(), layer.weight.view(), layer.bias.view());
            if i == last {
                let u = h.mapv(|v| v.tanh());
                return ForwardCache {
                    inputs,
                    dropout_on,
                    z: h,
                    u,
                };
            }
            let r = rng.as_mut().map(|r| &mut **r as &mut dyn rand::RngCore);
            relu_dropout_forward(&mut h, self.dropout, r);
            inputs.push(h);
        }
        unreachable!("the last layer returns")
    }

    /// Back-propagates `dz = ∂L/∂z` (gradient at the logits, before tanh) through every layer.
    /// Returns the parameter gradients and, when asked, `∂L/∂x`.
    pub fn backward(
        &self,
        cache: &ForwardCache<T>,
        dz: ArrayView2<T>,
        want_dx: bool,
    ) -> (Grads<T>, Option<Array2<T>>) {
        let n = self.layers.len();
        let scale = if cache.dropout_on {
            T::from_f64(1.0 / (1.0 - self.dropout))
        } else {
            T::one()
        };
        let mut weight = Vec::with_capacity(n);
        let mut bias = Vec::with_capacity(n);
        let mut dy = dz.to_owned();
        let mut dx = None;
        for i in (0..n).rev() {
            let need_dx = i > 0 || want_dx;
            let (dw, db, d_in) = linear_backward(
                cache.inputs[i].view(),
                self.layers[i].weight.view(),
                dy.view(),
                need_dx,
            );
            weight.push(dw);
            bias.push(db);
            match d_in {
                Some(d) if i > 0 => {
                    dy = relu_dropout_backward(cache.inputs[i].view(), d.view(), scale)
                }
                d => dx = d,
            }
        }
        weight.reverse();
        bias.reverse();
        (Grads { weight, bias }, dx)
    }

    /// Parameters as flat mutable slices, in the order weight 0, bias 0, weight 1, ...
    pub(crate) fn parameters_mut(&mut self) -> Vec<&mut [T]> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for l in &mut self.layers {
            out.push(
                l.weight
                    .as_slice_mut()
                    .expect("weights are standard layout"),
            );
            out.push(l.bias.as_slice_mut().expect("biases are contiguous"));
        }
        out
    }

    /// The same head in another float type.
    pub fn cast<U: Real>(&self) -> HashHead<U> {
        HashHead {
            layers: self
                .layers
                .iter()
                .map(|l| Linear {
                    weight: l.weight.mapv(|v| U::from_f64(v.to_f64())),
                    bias: l.bias.mapv(|v| U::from_f64(v.to_f64())),
                })
                .collect(),
            dropout: self.dropout,
        }
    }
}

impl<T: Real> Grads<T> {
    /// Gradients as flat slices, in the order of `HashHead::parameters_mut`.
    pub(crate) fn flat(&self) -> Vec<&[T]> {
        let mut out = Vec::with_capacity(2 * self.weight.len());
        for (w, b) in self.weight.iter().zip(&self.bias) {
            out.push(w.as_slice().expect("standard layout"));
            out.push(b.as_slice().expect("contiguous"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{assert_grad_close, numeric_grad};
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-1.0..1.0))
    }

    /// A scalar loss with a generic upstream gradient: `Σ y ⊙ g`.
    fn probe(y: &Array2<f64>, g: &Array2<f64>) -> f64 {
        (y * g).sum()
    }

    #[test]
    fn linear_layer_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(30);
        let (x, w, b, g) = (
            random(6, 5, &mut rng),
            random(5, 4, &mut rng),
            random(1, 4, &mut rng).row(0).to_owned(),
            random(6, 4, &mut rng),
        );
        let (dw, db, dx) = linear_backward(x.view(), w.view(), g.view(), true);
        let f = |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| {
            probe(&linear_forward(x.view(), w.view(), b.view()), &g)
        };
        assert_grad_close(&dw, &numeric_grad(&w, |w| f(&x, w, &b)), "linear dW");
        assert_grad_close(&db, &numeric_grad(&b, |b| f(&x, &w, b)), "linear db");
        assert_grad_close(
            &dx.unwrap(),
            &numeric_grad(&x, |x| f(x, &w, &b)),
            "linear dx",
        );
    }

    #[test]
    fn tanh_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let (z, g) = (random(4, 7, &mut rng) * 2.0, random(4, 7, &mut rng));
        let u = z.mapv(f64::tanh);
        let dz = tanh_backward(u.view(), g.view());
        assert_grad_close(
            &dz,
            &numeric_grad(&z, |z| probe(&z.mapv(f64::tanh), &g)),
            "tanh",
        );
    }

    #[test]
    fn relu_dropout_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(32);
        // Keep pre-activations away from the kink at 0, where the difference quotient lies.
        let h = random(5, 8, &mut rng).mapv(|v| if v.abs() < 0.05 { 0.5 } else { v });
        let g = random(5, 8, &mut rng);
        for p in [0.0, 0.5] {
            let run = |h: &Array2<f64>| {
                let mut y = h.clone();
                let mut r = ChaCha8Rng::seed_from_u64(99); // same mask every call
                relu_dropout_forward(&mut y, p, Some(&mut r));
                y
            };
            let y = run(&h);
            let dh = relu_dropout_backward(y.view(), g.view(), 1.0 / (1.0 - p));
            assert_grad_close(
                &dh,
                &numeric_grad(&h, |h| probe(&run(h), &g)),
                "relu+dropout",
            );
            if p > 0.0 {
                // Some units were dropped, the kept ones scaled by 2.
                let kept = y
                    .iter()
                    .zip(&h)
                    .filter(|(y, h)| **h > 0.0 && **y != 0.0)
                    .count();
                let positive = h.iter().filter(|&&v| v > 0.0).count();
                assert!(kept > 0 && kept < positive, "{kept} of {positive}");
                assert!(y.iter().zip(&h).all(|(&y, &h)| y == 0.0 || y == 2.0 * h));
            }
        }
    }

    /// The whole head: every weight, every bias, and the input, through ReLU, dropout and tanh.
    #[test]
    fn full_head_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        for (hidden, dropout) in [(vec![], 0.0), (vec![9], 0.0), (vec![9, 7], 0.3)] {
            let head = HashHead::<f64>::new(6, &hidden, 8, dropout, &mut rng);
            let x = random(5, 6, &mut rng);
            let g = random(5, 8, &mut rng);
            // Loss on the codes u: Σ u ⊙ g; its gradient at z goes through tanh.
            let loss = |head: &HashHead<f64>, x: &Array2<f64>| {
                let mut r = ChaCha8Rng::seed_from_u64(7);
                let c = head.forward_train(x.clone(), Some(&mut r));
                probe(&c.u, &g)
            };
            let mut r = ChaCha8Rng::seed_from_u64(7);
            let cache = head.forward_train(x.clone(), Some(&mut r));
            let dz = tanh_backward(cache.u.view(), g.view());
            let (grads, dx) = head.backward(&cache, dz.view(), true);
            for i in 0..head.layers().len() {
                let nw = numeric_grad(head.layers()[i].weight(), |w| {
                    let mut h = head.clone();
                    h.layers[i].weight = w.clone();
                    loss(&h, &x)
                });
                assert_grad_close(&grads.weight[i], &nw, &format!("head {hidden:?} W{i}"));
                let nb = numeric_grad(head.layers()[i].bias(), |b| {
                    let mut h = head.clone();
                    h.layers[i].bias = b.clone();
                    loss(&h, &x)
                });
                assert_grad_close(&grads.bias[i], &nb, &format!("head {hidden:?} b{i}"));
            }
            assert_grad_close(
                &dx.unwrap(),
                &numeric_grad(&x, |x| loss(&head, x)),
                "head dx",
            );
        }
    }

    #[test]
    fn inference_matches_training_without_dropout_and_layout_is_in_out() {
        let mut rng = ChaCha8Rng::seed_from_u64(34);
        let head = HashHead::<f32>::new(5, &[7], 16, 0.5, &mut rng);
        assert_eq!(head.layers()[0].weight().dim(), (5, 7));
        assert_eq!(head.layers()[1].weight().dim(), (7, 16));
        assert_eq!(
            (head.activation(0), head.activation(1)),
            (Activation::Relu, Activation::Tanh)
        );
        assert_eq!(head.parameter_count(), 5 * 7 + 7 + 7 * 16 + 16);
        let x = random(3, 5, &mut rng).mapv(|v| v as f32);
        let cache = head.forward_train(x.clone(), None);
        assert_eq!(head.forward(x.view()), cache.u);
        // By hand for one row: relu(x W0 + b0) W1 + b1, then tanh.
        let l = head.layers();
        let h = (x.row(0).dot(l[0].weight()) + l[0].bias()).mapv(|v| v.max(0.0));
        let u = (h.dot(l[1].weight()) + l[1].bias()).mapv(f32::tanh);
        let diff = (&u - &cache.u.row(0)).mapv(f32::abs);
        assert!(diff.iter().all(|&d| d < 1e-6));
    }

    #[test]
    fn init_is_seeded_and_bounded() {
        let a = HashHead::<f32>::new(100, &[50], 16, 0.0, &mut ChaCha8Rng::seed_from_u64(1));
        let b = HashHead::<f32>::new(100, &[50], 16, 0.0, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        let kaiming = (6.0f32 / 100.0).sqrt();
        let w0 = a.layers()[0].weight();
        assert!(w0.iter().all(|v| v.abs() <= kaiming));
        assert!(w0.iter().any(|v| v.abs() > 0.9 * kaiming));
        assert!(a.layers()[1]
            .weight()
            .iter()
            .all(|v| v.abs() <= (6.0f32 / 66.0).sqrt()));
        assert!(HashHead::from_layers(
            vec![
                Linear::new(Array2::<f32>::zeros((3, 4)), Array1::zeros(4)).unwrap(),
                Linear::new(Array2::<f32>::zeros((5, 2)), Array1::zeros(2)).unwrap(),
            ],
            0.0
        )
        .is_err());
        assert!(Linear::new(array![[1.0f32, 2.0]], Array1::zeros(3)).is_err());
    }
}
