//! Finite-difference checks of the backbone path: burn's gradients of *our* objective (the
//! ICS batch objective after the hand-written head, back through the head's `∂L/∂features`
//! into the network) against central differences of the whole objective, in `f64`, on a tiny
//! EfficientNet-Lite (stride-2 SAME padding, 3x3 and 5x5 depthwise convolutions, expansion,
//! residual adds, ReLU6, pooling).

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::device::{inference_device, training_device};
use super::network::{tensor, to_vec, NetworkTensors, Start};
use crate::backbone::architecture::Architecture;
use crate::backbone::folded::{FoldedConv, NetworkWeights};
use crate::ics::head::HashHead;
use crate::ics::loss::batch_objective;

const SIZE: usize = 16;
const BATCH: usize = 3;
const BITS: usize = 16;
const LAMBDA_Q: f64 = 0.05;

/// The objective's value for a perturbation `delta` of one value (`conv`, weight or bias,
/// index) of the network, and, when `grads`, burn's gradients of every trained value.
struct Problem {
    weights: NetworkWeights,
    start: Start,
    input: Vec<f64>,
    input_shape: [usize; 4],
    head: HashHead<f64>,
    targets: Array2<f64>,
}

type Perturbation<'a> = Option<(&'a str, bool, usize, f64)>;

impl Problem {
    fn new(start: Start, seed: u64) -> Problem {
        let arch = Architecture::tiny();
        let weights = NetworkWeights::random(&arch, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
        let input_shape = match start {
            Start::Image => [BATCH, 3, SIZE, SIZE],
            Start::Stage(s) => {
                let b = arch.boundary(s, SIZE);
                [BATCH, b.channels, b.spatial, b.spatial]
            }
        };
        let n: usize = input_shape.iter().product();
        // Activations entering a stage are ReLU6 outputs or sums of them: keep them positive.
        let input = (0..n)
            .map(|_| match start {
                Start::Image => rng.gen_range(-1.0..1.0),
                Start::Stage(_) => rng.gen_range(0.0..3.0),
            })
            .collect();
        let head = HashHead::<f64>::new(arch.head_channels, &[10], BITS, 0.0, &mut rng);
        let targets = Array2::from_shape_fn((BATCH, BITS), |_| rng.gen_range(-1.0..1.0));
        Problem {
            weights,
            start,
            input,
            input_shape,
            head,
            targets,
        }
    }

    fn values<'a>(
        &'a self,
        p: Perturbation<'a>,
    ) -> impl Fn(&FoldedConv) -> (Vec<f64>, Vec<f64>) + 'a {
        move |c: &FoldedConv| {
            let mut w: Vec<f64> = c.weight.iter().map(|&v| f64::from(v)).collect();
            let mut b: Vec<f64> = c.bias.iter().map(|&v| f64::from(v)).collect();
            if let Some((name, is_weight, i, d)) = p {
                if name == c.name {
                    if is_weight {
                        w[i] += d;
                    } else {
                        b[i] += d;
                    }
                }
            }
            (w, b)
        }
    }

    /// The batch objective `mean_i [l(u_i, t_i) + λ_q quant(u_i)]` of the network + head.
    fn objective(&self, p: Perturbation) -> f64 {
        let device = inference_device();
        let net = NetworkTensors::upload(&self.weights, self.start, self.values(p), &device, false);
        let x = tensor::<f64, 4>(self.input.clone(), self.input_shape, &device);
        let f: Vec<f64> = to_vec(net.forward(x).into_data());
        let f = Array2::from_shape_vec((BATCH, self.weights.arch.head_channels), f).unwrap();
        let cache = self.head.forward_train(f, None);
        let (loss, _) = batch_objective(
            cache.z.view(),
            cache.u.view(),
            self.targets.view(),
            LAMBDA_Q,
        );
        loss.centre + LAMBDA_Q * loss.quantization
    }

    /// burn's gradients of the objective: head backward to `∂L/∂features`, then the
    /// vector-Jacobian product through the network, as the training source computes it.
    fn analytic(&self) -> Vec<(String, Vec<f64>, Vec<f64>)> {
        let device = training_device();
        let net =
            NetworkTensors::upload(&self.weights, self.start, self.values(None), &device, true);
        let x = tensor::<f64, 4>(self.input.clone(), self.input_shape, &device);
        let features = net.forward(x);
        let d = self.weights.arch.head_channels;
        let f = Array2::from_shape_vec((BATCH, d), to_vec::<f64>(features.to_data())).unwrap();
        let cache = self.head.forward_train(f, None);
        let (_, dz) = batch_objective(
            cache.z.view(),
            cache.u.view(),
            self.targets.view(),
            LAMBDA_Q,
        );
        let (_, dx) = self.head.backward(&cache, dz.view(), true);
        let g = tensor::<f64, 2>(dx.unwrap().iter().copied().collect(), [BATCH, d], &device);
        let grads = (features * g).sum().backward();
        net.gradients::<f64>(&grads)
    }
}

fn check(start: Start, seed: u64) {
    let p = Problem::new(start, seed);
    let grads = p.analytic();
    let h = 1e-6;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut checked, mut worst) = (0, 0f64);
    for (name, gw, gb) in &grads {
        // Three weights and one bias of every trained convolution.
        let mut picks: Vec<(bool, usize)> =
            (0..3).map(|_| (true, rng.gen_range(0..gw.len()))).collect();
        picks.push((false, rng.gen_range(0..gb.len())));
        for (is_weight, i) in picks {
            let up = p.objective(Some((name, is_weight, i, h)));
            let down = p.objective(Some((name, is_weight, i, -h)));
            let numeric = (up - down) / (2.0 * h);
            let analytic = if is_weight { gw[i] } else { gb[i] };
            let err = (analytic - numeric).abs() / (1e-7 + analytic.abs().max(numeric.abs()));
            worst = worst.max(err);
            assert!(
                err < 1e-4 || (analytic - numeric).abs() < 1e-9,
                "{start:?} {name} {} [{i}]: burn {analytic:.9e}, finite difference {numeric:.9e}",
                if is_weight { "weight" } else { "bias" }
            );
            checked += 1;
        }
    }
    // Every convolution of the part took part (none had an all-zero gradient).
    assert!(grads.iter().all(|(_, w, _)| w.iter().any(|v| *v != 0.0)));
    eprintln!("{start:?}: {checked} values checked, worst relative error {worst:.2e}");
}

#[test]
fn whole_network_gradients_match_finite_differences() {
    check(Start::Image, 1);
}

#[test]
fn top_stage_gradients_match_finite_differences() {
    // From stage 2 on (a 5x5 stride-2 stage with a residual block, then a 3x3 stride-2 one).
    check(Start::Stage(2), 2);
    // Only the head convolution.
    check(Start::Stage(4), 3);
}
