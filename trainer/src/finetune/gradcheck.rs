//! Finite-difference checks of the backbone path: burn's gradients of *our* objective (the
//! ICS batch objective after the hand-written head, back through the head's `∂L/∂features`
//! into the network) against central differences of the whole objective, in `f64`, on a tiny
//! EfficientNet-Lite (stride-2 SAME padding, 3x3 and 5x5 depthwise convolutions, expansion,
//! residual adds, ReLU6, pooling).
//!
//! It runs on any device ([`run`]): the tests run it on the CPU, or on the device
//! `ICS_GRADCHECK_DEVICE` names (`cpu`, `cuda`, `auto`; `cuda` needs `--features cuda` and a
//! GPU), and `examples/gpu_check.rs` runs it on the GPU for `tests/gpu/check_cuda.sh`.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::device::{inference_device, training_device, Compute};
use super::engine::Engine;
use super::network::{NetworkTensors, Start};
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
    fn objective<G: Engine>(&self, device: &G, p: Perturbation) -> f64 {
        let net = NetworkTensors::upload(&self.weights, self.start, self.values(p), device, false);
        let x = device.tensor4::<f64>(self.input.clone(), self.input_shape);
        let f: Vec<f64> = G::values2(net.forward(x));
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
    fn analytic<G: Engine>(&self, device: &G) -> Vec<(String, Vec<f64>, Vec<f64>)> {
        let net =
            NetworkTensors::upload(&self.weights, self.start, self.values(None), device, true);
        let x = device.tensor4::<f64>(self.input.clone(), self.input_shape);
        let features = net.forward(x);
        let d = self.weights.arch.head_channels;
        let f = Array2::from_shape_vec((BATCH, d), G::values2::<f64>(features.clone())).unwrap();
        let cache = self.head.forward_train(f, None);
        let (_, dz) = batch_objective(
            cache.z.view(),
            cache.u.view(),
            self.targets.view(),
            LAMBDA_Q,
        );
        let (_, dx) = self.head.backward(&cache, dz.view(), true);
        let g = device.tensor2::<f64>(dx.unwrap().iter().copied().collect(), [BATCH, d]);
        let grads = G::vjp(features, g);
        net.gradients::<f64>(&grads)
    }
}

/// The part checked, seed, values checked, worst relative error.
pub type Checked = (Start, u64, usize, f64);

/// Checks the part from `start` (problem `seed`): three weights and one bias of every trained
/// convolution, burn's gradient (on `train`, with autodiff) against the central difference
/// of the objective (on `infer`); an error naming the first value that disagrees.
fn check<G: Engine>(train: &G, infer: &G, start: Start, seed: u64) -> Result<Checked, String> {
    let p = Problem::new(start, seed);
    let grads = p.analytic(train);
    let h = 1e-6;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut checked, mut worst) = (0, 0f64);
    for (name, gw, gb) in &grads {
        // Three weights and one bias of every trained convolution.
        let mut picks: Vec<(bool, usize)> =
            (0..3).map(|_| (true, rng.gen_range(0..gw.len()))).collect();
        picks.push((false, rng.gen_range(0..gb.len())));
        for (is_weight, i) in picks {
            let up = p.objective(infer, Some((name, is_weight, i, h)));
            let down = p.objective(infer, Some((name, is_weight, i, -h)));
            let numeric = (up - down) / (2.0 * h);
            let analytic = if is_weight { gw[i] } else { gb[i] };
            let err = (analytic - numeric).abs() / (1e-7 + analytic.abs().max(numeric.abs()));
            worst = worst.max(err);
            if !(err < 1e-4 || (analytic - numeric).abs() < 1e-9) {
                return Err(format!(
                    "{start:?} {name} {} [{i}]: burn {analytic:.9e}, finite difference \
                     {numeric:.9e}",
                    if is_weight { "weight" } else { "bias" }
                ));
            }
            checked += 1;
        }
    }
    // Every convolution of the part took part (none had an all-zero gradient).
    if let Some((name, ..)) = grads.iter().find(|(_, w, _)| w.iter().all(|v| *v == 0.0)) {
        return Err(format!("{start:?}: {name} has an all-zero gradient"));
    }
    Ok((start, seed, checked, worst))
}

/// The checks of the tests below on `compute`: the whole network, from stage 2 on (a 5x5
/// stride-2 stage with a residual block, then a 3x3 stride-2 one), only the head convolution.
pub fn run(compute: &Compute) -> Result<Vec<Checked>, String> {
    run_parts(
        compute,
        &[
            (Start::Image, 1),
            (Start::Stage(2), 2),
            (Start::Stage(4), 3),
        ],
    )
}

fn run_parts(compute: &Compute, parts: &[(Start, u64)]) -> Result<Vec<Checked>, String> {
    fn all<G: Engine>(
        train: &G,
        infer: &G,
        parts: &[(Start, u64)],
    ) -> Result<Vec<Checked>, String> {
        parts
            .iter()
            .map(|&(start, seed)| check(train, infer, start, seed))
            .collect()
    }
    match compute {
        Compute::Cpu => all(&training_device(), &inference_device(), parts),
        #[cfg(feature = "cuda")]
        Compute::Cuda(g) => all(g, g, parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finetune::device::{resolve, DeviceChoice};

    /// The device `ICS_GRADCHECK_DEVICE` names (default: the CPU).
    fn device() -> Compute {
        let choice: DeviceChoice = std::env::var("ICS_GRADCHECK_DEVICE")
            .unwrap_or_else(|_| "cpu".into())
            .parse()
            .unwrap();
        let (compute, note) = resolve(choice).unwrap();
        if let Some(note) = note {
            eprintln!("{note}");
        }
        compute
    }

    fn check_parts(parts: &[(Start, u64)]) {
        let compute = device();
        for (start, _, checked, worst) in run_parts(&compute, parts).unwrap() {
            eprintln!(
                "{start:?} on {}: {checked} values checked, worst relative error {worst:.2e}",
                compute.describe()
            );
        }
    }

    #[test]
    fn whole_network_gradients_match_finite_differences() {
        check_parts(&[(Start::Image, 1)]);
    }

    #[test]
    fn top_stage_gradients_match_finite_differences() {
        // From stage 2 on (a 5x5 stride-2 stage with a residual block, then a 3x3 stride-2
        // one), and only the head convolution.
        check_parts(&[(Start::Stage(2), 2), (Start::Stage(4), 3)]);
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        // The check can fail: the objective of another problem disagrees with these gradients.
        let p = Problem::new(Start::Stage(4), 3);
        let mut q = Problem::new(Start::Stage(4), 3);
        q.targets.mapv_inplace(|t| -t);
        let d = inference_device();
        assert_ne!(p.objective(&d, None), q.objective(&d, None));
        let e = check_swapped(&p, &q).unwrap_err();
        assert!(e.contains("finite difference"), "{e}");
    }

    /// The `cuda` feature's burn 0.21 engine, on burn 0.21's CPU backend: its gradients
    /// against finite differences, and its objective against burn 0.22's.
    #[cfg(feature = "cuda-on-cpu")]
    #[test]
    fn burn21_engine_matches_finite_differences_and_burn22() {
        use burn_cuda_backend::backend::{Autodiff, Flex};
        let g = crate::finetune::engine::Burn21::<Autodiff<Flex>>(Default::default());
        for (start, seed) in [
            (Start::Image, 1),
            (Start::Stage(2), 2),
            (Start::Stage(4), 3),
        ] {
            let (_, _, n, worst) = check(&g, &g, start, seed).unwrap();
            let p = Problem::new(start, seed);
            let (a, b) = (
                p.objective(&g, None),
                p.objective(&inference_device(), None),
            );
            eprintln!(
                "{start:?} on burn 0.21 flex: {n} values checked, worst relative error \
                 {worst:.2e}; objective {a:.12} vs burn 0.22 {b:.12}"
            );
            assert!((a - b).abs() <= 1e-10 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    /// [`check`] with `p`'s gradients against `q`'s objective.
    fn check_swapped(p: &Problem, q: &Problem) -> Result<(), String> {
        let grads = p.analytic(&training_device());
        let d = inference_device();
        let h = 1e-6;
        for (name, gw, _) in &grads {
            for (i, &analytic) in gw.iter().enumerate().take(3) {
                let up = q.objective(&d, Some((name, true, i, h)));
                let down = q.objective(&d, Some((name, true, i, -h)));
                let numeric = (up - down) / (2.0 * h);
                let err = (analytic - numeric).abs() / (1e-7 + analytic.abs().max(numeric.abs()));
                if !(err < 1e-4 || (analytic - numeric).abs() < 1e-9) {
                    return Err(format!(
                        "{name} [{i}]: burn {analytic:.9e}, finite difference {numeric:.9e}"
                    ));
                }
            }
        }
        Ok(())
    }
}
