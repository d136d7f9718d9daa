//! Adam (Kingma & Ba, 2015) as PyTorch's `torch.optim.Adam` computes it (bias-corrected
//! moments, `ε` added after the square root, optional L2 `weight_decay` added to the
//! gradient), over a list of flat parameter tensors: the hash head's (where the decay applies
//! to weight matrices only, not biases) and a fine-tuned backbone's.
//!
//! The update is element-wise, so it is split over rayon in fixed-size chunks: the result
//! does not depend on the thread count. [`AdamState`] is what a checkpoint keeps.

use rayon::prelude::*;

use super::head::{Grads, HashHead};
use super::real::Real;

/// Elements per parallel chunk of the update.
const CHUNK: usize = 1 << 14;

/// Adam's state for a list of parameter tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T> {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    state: AdamState<T>,
}

/// The moments and the step count: everything Adam carries from one step to the next.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState<T> {
    pub steps: i32,
    /// First and second moments, one vector per parameter tensor.
    pub m: Vec<Vec<T>>,
    pub v: Vec<Vec<T>>,
}

impl<T: Real> Adam<T> {
    /// Zero moments for `head`; β = (0.9, 0.999), ε = 1e-8 (the usual defaults).
    pub fn new(head: &mut HashHead<T>, weight_decay: f64) -> Adam<T> {
        let sizes: Vec<usize> = head.parameters_mut().iter().map(|p| p.len()).collect();
        Self::for_sizes(&sizes, weight_decay)
    }

    /// Zero moments for parameter tensors of `sizes` elements.
    pub fn for_sizes(sizes: &[usize], weight_decay: f64) -> Adam<T> {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            state: AdamState {
                steps: 0,
                m: sizes.iter().map(|&n| vec![T::zero(); n]).collect(),
                v: sizes.iter().map(|&n| vec![T::zero(); n]).collect(),
            },
        }
    }

    /// Number of steps taken.
    pub fn steps(&self) -> i32 {
        self.state.steps
    }

    /// The state a checkpoint keeps.
    pub fn state(&self) -> &AdamState<T> {
        &self.state
    }

    /// Continues from a saved state (same tensor sizes).
    pub fn restore(&mut self, state: AdamState<T>) -> anyhow::Result<()> {
        let sizes = |s: &AdamState<T>| -> Vec<(usize, usize)> {
            s.m.iter()
                .zip(&s.v)
                .map(|(m, v)| (m.len(), v.len()))
                .collect()
        };
        anyhow::ensure!(
            sizes(&state) == sizes(&self.state) && state.steps >= 0,
            "the saved optimiser state does not fit these parameters"
        );
        self.state = state;
        Ok(())
    }

    /// One update of every parameter of `head` with gradients `grads` at learning rate `lr`;
    /// weight decay on the weight matrices only.
    pub fn step(&mut self, head: &mut HashHead<T>, grads: &Grads<T>, lr: f64) {
        // Even indices are weight matrices (see HashHead::parameters_mut).
        self.step_slices(head.parameters_mut(), grads.flat(), |idx| idx % 2 == 0, lr);
    }

    /// One update of `params` (in the order of the sizes given at creation) with `grads` at
    /// learning rate `lr`; `decays(i)` says whether tensor `i` gets the weight decay.
    pub fn step_slices(
        &mut self,
        params: Vec<&mut [T]>,
        grads: Vec<&[T]>,
        decays: impl Fn(usize) -> bool,
        lr: f64,
    ) {
        assert_eq!(params.len(), self.state.m.len(), "parameter tensors");
        assert_eq!(grads.len(), self.state.m.len(), "gradient tensors");
        self.state.steps += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        // Bias corrections folded into the step size and ε, as torch does.
        let c1 = 1.0 - b1.powi(self.state.steps);
        let c2 = 1.0 - b2.powi(self.state.steps);
        let step = T::from_f64(lr / c1);
        let sqrt_c2 = T::from_f64(c2.sqrt());
        let eps = T::from_f64(self.eps);
        let (tb1, tb2) = (T::from_f64(b1), T::from_f64(b2));
        let (ob1, ob2) = (T::from_f64(1.0 - b1), T::from_f64(1.0 - b2));
        let state = &mut self.state;
        for (idx, ((p, g), (m, v))) in params
            .into_iter()
            .zip(grads)
            .zip(state.m.iter_mut().zip(state.v.iter_mut()))
            .enumerate()
        {
            assert_eq!((p.len(), g.len()), (m.len(), m.len()), "tensor {idx}");
            let wd = if decays(idx) {
                T::from_f64(self.weight_decay)
            } else {
                T::zero()
            };
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
                .for_each(|((p, g), (m, v))| {
                    for i in 0..p.len() {
                        let g = g[i] + wd * p[i];
                        m[i] = tb1 * m[i] + ob1 * g;
                        v[i] = tb2 * v[i] + ob2 * g * g;
                        p[i] -= step * m[i] / (v[i].sqrt() / sqrt_c2 + eps);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::Linear;
    use super::*;
    use ndarray::{array, Array1, Array2};

    fn one_weight(w: f64) -> HashHead<f64> {
        HashHead::from_layers(
            vec![Linear::new(array![[w]], Array1::zeros(1)).unwrap()],
            0.0,
        )
        .unwrap()
    }

    fn grads(gw: f64, gb: f64) -> Grads<f64> {
        Grads {
            weight: vec![array![[gw]]],
            bias: vec![array![gb]],
        }
    }

    #[test]
    fn first_steps_match_hand_computation() {
        let mut head = one_weight(1.0);
        let mut adam = Adam::new(&mut head, 0.0);
        // Step 1: m̂ = g, v̂ = g², update = lr · g/(|g| + ε) ≈ lr · sign(g).
        adam.step(&mut head, &grads(0.5, -2.0), 0.1);
        assert!((head.layers()[0].weight()[[0, 0]] - 0.9).abs() < 1e-7);
        assert!((head.layers()[0].bias()[0] - 0.1).abs() < 1e-7);
        // Step 2 with g = 0.1: m = 0.9·0.05 + 0.01 = 0.055, m̂ = 0.055/0.19;
        // v = 0.999·0.00025 + 0.001·0.01 = 0.00025975, v̂ = v/(1 − 0.998001).
        adam.step(&mut head, &grads(0.1, 0.0), 0.1);
        let m_hat = 0.055 / 0.19;
        let v_hat = 0.000_259_75 / (1.0 - 0.999f64.powi(2));
        let want = 0.9 - 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
        // Step 1 moved the weight by 0.1 · 0.5/(0.5 + ε), 2e-9 short of 0.1.
        assert!((head.layers()[0].weight()[[0, 0]] - want).abs() < 1e-7);
        assert_eq!(adam.steps(), 2);
    }

    #[test]
    fn weight_decay_applies_to_weights_not_biases() {
        let mut head = one_weight(2.0);
        let mut adam = Adam::new(&mut head, 0.5);
        // Zero loss gradient: only the decay term 0.5 · 2 = 1 moves the weight.
        adam.step(&mut head, &grads(0.0, 0.0), 0.1);
        assert!((head.layers()[0].weight()[[0, 0]] - 1.9).abs() < 1e-7);
        assert_eq!(head.layers()[0].bias()[0], 0.0);
    }

    #[test]
    fn minimises_a_quadratic() {
        // f(W) = ½‖W − T‖²: Adam walks W to T.
        let target = Array2::from_shape_fn((3, 20_000), |(i, j)| ((i * 7 + j) % 13) as f64 / 13.0);
        let layer = Linear::new(Array2::zeros((3, 20_000)), Array1::zeros(20_000)).unwrap();
        let mut head = HashHead::from_layers(vec![layer], 0.0).unwrap();
        let mut adam = Adam::new(&mut head, 0.0);
        for _ in 0..600 {
            let g = Grads {
                weight: vec![head.layers()[0].weight() - &target],
                bias: vec![Array1::zeros(20_000)],
            };
            adam.step(&mut head, &g, 0.01);
        }
        let err = (head.layers()[0].weight() - &target)
            .mapv(f64::abs)
            .fold(0.0, |a: f64, &b| a.max(b));
        assert!(err < 1e-2, "max error {err}");
    }
}
