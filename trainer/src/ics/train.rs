//! The training loop: ICS (or the CSQ baseline) on precomputed feature vectors.
//!
//! Per epoch the training set is shuffled (seeded) and cut into mini-batches. Per mini-batch:
//! 1. forward the head (dropout on) to get logits `z` and codes `u = tanh z`;
//! 2. ICS, after the warm-up epochs: with the network fixed, update that batch's per-image
//!    weights from the per-label losses `l(u_i, c_k)` (`n_pgd` PGD steps, or the closed form);
//! 3. targets: ICS `c̄_i = Σ_k w_ik c_k` (soft), CSQ `sign(mean_k c_k)` with the run's
//!    tie-break vector;
//! 4. one Adam step on the head for `mean_i [l(u_i, c̄_i) + λ_q quant(u_i)]`.
//!
//! Reproducible: the centres, the initial weights, the shuffles, dropout and the CSQ
//! tie-break come from separate streams of one seed, and every parallel reduction has a
//! fixed order, so the same seed and data give bit-identical heads and codes.

use std::time::Instant;

use anyhow::{bail, ensure, Result};
use ndarray::{ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::centres::Centres;
use super::config::{rng, Method, Stream, TrainConfig, WeightUpdate};
use super::head::HashHead;
use super::loss::{batch_objective, csq_centroids, label_losses, soft_centroids, BatchLoss};
use super::model::{encode_packed, IcsModel};
use super::weights::InstanceWeights;
use crate::eval::map::map_at_r;
use crate::eval::set::EvalSet;

/// One epoch's numbers, passed to the callback and kept in the model's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based.
    pub epoch: usize,
    pub lr: f64,
    /// Mean over images of the full objective: `centre + λ_q · quantization` plus, for ICS,
    /// `λ_r Σ_k w_ik ln w_ik` (the negative entropy term).
    pub loss: f64,
    /// Mean `l(u_i, c̄_i)` (mean over bits).
    pub centre: f64,
    /// Mean `mean_j (|u_ij| − 1)²`, before `λ_q`.
    pub quantization: f64,
    /// Mean entropy (nats) of the per-image weights over the whole training set at the end
    /// of the epoch (`ln |L_i|` averaged while they are uniform).
    pub weight_entropy: f64,
    /// Whether the weights were updated this epoch (false during warm-up and for CSQ).
    pub weights_updated: bool,
    /// mAP@R on the evaluation set, on the epochs it is computed.
    pub map: Option<f64>,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
}

/// Checks features and labels and returns each image's label list. Errors name the row.
pub fn validate_data<L: Copy + Into<u8>>(
    features: ArrayView2<f32>,
    labels: ArrayView2<L>,
) -> Result<Vec<Vec<usize>>> {
    let (n, d) = features.dim();
    ensure!(n >= 1, "no training images");
    ensure!(d >= 1, "features have no columns");
    ensure!(
        labels.nrows() == n,
        "{n} feature rows but {} label rows",
        labels.nrows()
    );
    ensure!(labels.ncols() >= 1, "labels have no columns (no classes)");
    if let Some(i) = features
        .rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        bail!("feature row {i} is not finite (NaN or infinity)");
    }
    let mut lists = Vec::with_capacity(n);
    for (i, row) in labels.rows().into_iter().enumerate() {
        let mut l = Vec::new();
        for (k, &v) in row.iter().enumerate() {
            match v.into() {
                0 => {}
                1 => l.push(k),
                other => bail!("label row {i}, column {k} is {other}: labels must be 0 or 1"),
            }
        }
        ensure!(
            !l.is_empty(),
            "label row {i} has no label: every training image needs at least one"
        );
        lists.push(l);
    }
    Ok(lists)
}

/// Trains a hash head on `features` (n, d) with multi-hot `labels` (n, C) of 0/1 (`u8` or
/// `bool`). `eval`, if given, is scored every `config.eval_every` epochs and after the last;
/// `on_epoch` is called once per epoch.
pub fn train<L: Copy + Into<u8>>(
    features: ArrayView2<f32>,
    labels: ArrayView2<L>,
    config: &TrainConfig,
    eval: Option<&EvalSet>,
    mut on_epoch: impl FnMut(&EpochLog),
) -> Result<IcsModel> {
    config.validate()?;
    let lists = validate_data(features, labels)?;
    let (n, d) = features.dim();
    let classes = labels.ncols();
    if let Some(e) = eval {
        ensure!(
            e.query_features.ncols() == d,
            "evaluation features have {} dimensions, training features {d}",
            e.query_features.ncols()
        );
        ensure!(
            e.query_labels.classes() == classes,
            "evaluation labels have {} classes, training labels {classes}",
            e.query_labels.classes()
        );
    }
    let ics = config.method == Method::Ics;
    if ics && config.weight_update == WeightUpdate::Pgd {
        // The entropy's curvature at uniform weights is λ_r·|L_i|: a larger step oscillates
        // and diverges instead of descending.
        let max_labels = lists.iter().map(Vec::len).max().unwrap_or(1);
        let stiffness = config.eta * config.lambda_r * max_labels as f64;
        ensure!(
            stiffness < 2.0,
            "eta * lambda_r * max labels per image = {} * {} * {max_labels} = {stiffness:.3} >= 2: \
             PGD on the entropy term would diverge; lower eta or use weight_update = closed_form",
            config.eta,
            config.lambda_r
        );
    }

    let centres = Centres::build(
        config.centres,
        classes,
        config.bits,
        config.min_centre_distance(),
        config.seed,
    )?;
    let mut head = HashHead::<f32>::new(
        d,
        &config.hidden,
        config.bits,
        config.dropout,
        &mut rng(config.seed, Stream::Init),
    );
    let mut adam = Adam::new(&mut head, config.weight_decay);
    let mut weights = InstanceWeights::uniform(lists, classes);
    let tie_break: Vec<f32> = {
        let mut r = rng(config.seed, Stream::TieBreak);
        (0..config.bits)
            .map(|_| if r.gen::<bool>() { 1.0 } else { -1.0 })
            .collect()
    };
    let mut shuffle_rng = rng(config.seed, Stream::Shuffle);
    let mut dropout_rng = rng(config.seed, Stream::Dropout);
    let mut order: Vec<usize> = (0..n).collect();
    let mut history = Vec::with_capacity(config.epochs);

    for epoch in 0..config.epochs {
        let started = Instant::now();
        let lr = config.lr_at(epoch);
        let update_weights = ics && epoch >= config.warmup_epochs;
        order.shuffle(&mut shuffle_rng);
        let (mut sum, mut neg_entropy) = (BatchLoss::default(), 0.0);
        for batch in order.chunks(config.batch_size) {
            let x = features.select(Axis(0), batch);
            let cache = head.forward_train(x, Some(&mut dropout_rng));

            if update_weights {
                for (row, &i) in batch.iter().enumerate() {
                    let losses = label_losses(cache.z.row(row), &centres, weights.labels(i));
                    match config.weight_update {
                        WeightUpdate::Pgd => {
                            for _ in 0..config.n_pgd {
                                weights.pgd_step(i, &losses, config.lambda_r, config.eta);
                            }
                        }
                        WeightUpdate::ClosedForm => {
                            weights.closed_form(i, &losses, config.lambda_r)
                        }
                    }
                }
            }
            let targets = if ics {
                soft_centroids(weights.matrix().select(Axis(0), batch).view(), &centres)
            } else {
                let l: Vec<&[usize]> = batch.iter().map(|&i| weights.labels(i)).collect();
                csq_centroids(&l, &centres, &tie_break)
            };

            let (loss, dz) = batch_objective(
                cache.z.view(),
                cache.u.view(),
                targets.view(),
                config.lambda_q,
            );
            let (grads, _) = head.backward(&cache, dz.view(), false);
            adam.step(&mut head, &grads, lr);

            let b = batch.len() as f64;
            sum.centre += loss.centre * b;
            sum.quantization += loss.quantization * b;
            if ics {
                neg_entropy -= batch.iter().map(|&i| weights.entropy(i)).sum::<f64>();
            }
        }

        let epoch_no = epoch + 1;
        let evaluate = epoch_no % config.eval_every == 0 || epoch_no == config.epochs;
        let map = match eval {
            Some(e) if evaluate => Some(map_at_r(
                &encode_packed(&head, e.query_features),
                &e.query_labels,
                &encode_packed(&head, e.db_features),
                &e.db_labels,
                e.r,
            )),
            _ => None,
        };
        let nf = n as f64;
        let (centre, quantization) = (sum.centre / nf, sum.quantization / nf);
        let log = EpochLog {
            epoch: epoch_no,
            lr,
            loss: centre + config.lambda_q * quantization + config.lambda_r * neg_entropy / nf,
            centre,
            quantization,
            weight_entropy: weights.mean_entropy(),
            weights_updated: update_weights,
            map,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&log);
        history.push(log);
    }
    Ok(IcsModel::new(
        config.clone(),
        head,
        centres,
        weights,
        history,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{make, Synthetic};
    use super::*;
    use crate::eval::codes::PackedCodes;
    use crate::eval::report::{RetrievalReport, TrainReport};
    use ndarray::{array, s, Array2};

    /// 32-d features, 6 classes, up to 3 labels: train 600 (also the database), 150 queries.
    fn data() -> (Synthetic, Synthetic) {
        (make(600, 32, 6, 3, 0.7, 1), make(150, 32, 6, 3, 0.7, 2))
    }

    fn small_config() -> TrainConfig {
        TrainConfig {
            bits: 32,
            hidden: vec![64],
            epochs: 12,
            batch_size: 32,
            lr: 3e-3,
            lr_step_epochs: 5,
            eval_every: 4,
            seed: 3,
            ..TrainConfig::default()
        }
    }

    fn eval_set<'a>(train: &'a Synthetic, test: &'a Synthetic) -> EvalSet<'a> {
        EvalSet::new(
            test.features.view(),
            test.labels.view(),
            train.features.view(),
            train.labels.view(),
            200,
        )
        .unwrap()
    }

    #[test]
    fn ics_end_to_end_beats_random_codes_by_a_wide_margin() {
        let (train_set, test_set) = data();
        let set = eval_set(&train_set, &test_set);
        let mut logs = Vec::new();
        let model = train(
            train_set.features.view(),
            train_set.labels.view(),
            &small_config(),
            Some(&set),
            |l| logs.push(l.clone()),
        )
        .unwrap();
        assert_eq!(logs.len(), 12);
        assert_eq!(logs, model.history());
        // Evaluated on epochs 4, 8, 12; warm-up (2 epochs) left the weights alone.
        let evaluated: Vec<usize> = logs
            .iter()
            .filter(|l| l.map.is_some())
            .map(|l| l.epoch)
            .collect();
        assert_eq!(evaluated, vec![4, 8, 12]);
        assert!(!logs[1].weights_updated && logs[2].weights_updated);
        assert!(logs.last().unwrap().loss < logs[0].loss, "{logs:?}");
        assert!(logs.iter().all(|l| l.loss.is_finite() && l.seconds >= 0.0));

        let report = RetrievalReport::evaluate(&model, &set, true);
        assert_eq!(Some(report.map_at_r), logs.last().unwrap().map);
        assert!(
            report.map_at_r >= report.random_codes_map_at_r + 0.2,
            "ICS mAP {} vs random codes {}",
            report.map_at_r,
            report.random_codes_map_at_r
        );
        assert!(report.precision_within_radius2 > 0.5, "{report:?}");
        let cosine = report.cosine_map_at_r.unwrap();
        assert!(
            cosine > report.random_codes_map_at_r + 0.2,
            "cosine {cosine}"
        );

        // The JSON report carries it all.
        let json = TrainReport::new(&model)
            .with_retrieval(&model, &set, false)
            .with_agreement(&model, train_set.areas.view())
            .unwrap()
            .to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["config"]["bits"], 32);
        assert_eq!(v["epochs"].as_array().unwrap().len(), 12);
        assert!(v["retrieval"]["map_at_r"].as_f64().unwrap() > 0.0);
        assert!(v["agreement"]["images"].as_u64().unwrap() > 100);
        assert_eq!(v["head"]["parameters"], (32 * 64 + 64) + (64 * 32 + 32));
    }

    #[test]
    fn learned_weights_track_area_shares() {
        // Features mix class prototypes by area share, so the labels whose centre the code
        // is closest to are the large objects: ICS weights (default lambda_r, PGD) should
        // rank labels by area and be closer to the shares than uniform weights.
        let (train_set, _) = data();
        let config = small_config();
        let model = train(
            train_set.features.view(),
            train_set.labels.view(),
            &config,
            None,
            |_| {},
        )
        .unwrap();
        let r =
            crate::eval::weight_area_agreement(model.weights(), train_set.areas.view()).unwrap();
        assert!(r.raw.learned.spearman > 0.5, "{r:?}");
        assert!(r.raw.learned.top1 > r.raw.uniform.top1 + 0.2, "{r:?}");
        assert!(r.raw.learned.kl < 0.8 * r.raw.uniform.kl, "{r:?}");
        // A tiny lambda_r collapses the weights onto one label: ranks still follow the areas,
        // but KL(a || w) explodes.
        let collapsed = TrainConfig {
            weight_update: WeightUpdate::ClosedForm,
            lambda_r: 0.01,
            ..small_config()
        };
        let model = train(
            train_set.features.view(),
            train_set.labels.view(),
            &collapsed,
            None,
            |_| {},
        )
        .unwrap();
        let c =
            crate::eval::weight_area_agreement(model.weights(), train_set.areas.view()).unwrap();
        assert!(c.raw.learned.kl > 2.0 * r.raw.uniform.kl, "{c:?}");
        assert!(model.weights().mean_entropy() < 0.1);
    }

    #[test]
    fn csq_baseline_trains_and_keeps_weights_uniform() {
        let (train_set, test_set) = data();
        let set = eval_set(&train_set, &test_set);
        let config = TrainConfig {
            method: Method::Csq,
            ..small_config()
        };
        let model = train(
            train_set.features.view(),
            train_set.labels.view(),
            &config,
            Some(&set),
            |_| {},
        )
        .unwrap();
        let m = model.history().last().unwrap().map.unwrap();
        assert!(m > 0.6, "CSQ mAP {m}");
        let fresh = InstanceWeights::uniform(
            (0..600)
                .map(|i| model.weights().labels(i).to_vec())
                .collect(),
            6,
        );
        assert_eq!(model.weights(), &fresh);
        assert!(model.history().iter().all(|l| !l.weights_updated));
    }

    #[test]
    fn huge_lambda_r_keeps_weights_uniform_in_training() {
        let (train_set, _) = data();
        for update in [WeightUpdate::ClosedForm, WeightUpdate::Pgd] {
            // PGD needs eta * lambda_r * 3 < 2.
            let config = TrainConfig {
                lambda_r: 1e6,
                eta: 1e-7,
                weight_update: update,
                epochs: 4,
                ..small_config()
            };
            let model = train(
                train_set.features.view(),
                train_set.labels.view(),
                &config,
                None,
                |_| {},
            )
            .unwrap();
            for i in 0..600 {
                let w = model.weights().on_labels(i);
                let u = 1.0 / w.len() as f64;
                assert!(
                    w.iter().all(|x| (x - u).abs() < 1e-5),
                    "{update:?} image {i}: {w:?}"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_model_other_seed_other_model() {
        let train_set = make(200, 16, 4, 2, 0.5, 5);
        let config = TrainConfig {
            bits: 16,
            hidden: vec![24],
            dropout: 0.3,
            epochs: 3,
            warmup_epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let run = |seed| {
            train(
                train_set.features.view(),
                train_set.labels.view(),
                &TrainConfig {
                    seed,
                    ..config.clone()
                },
                None,
                |_| {},
            )
            .unwrap()
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a.head(), b.head());
        assert_eq!(a.weights(), b.weights());
        assert_eq!(a.centres(), b.centres());
        assert_eq!(
            a.encode(train_set.features.view()),
            b.encode(train_set.features.view())
        );
        assert_ne!(a.head(), c.head());
        assert_ne!(a.centres(), c.centres());
    }

    #[test]
    fn encode_packs_the_signs_of_forward() {
        let train_set = make(100, 16, 3, 2, 0.5, 6);
        let config = TrainConfig {
            bits: 16,
            hidden: vec![8],
            epochs: 1,
            warmup_epochs: 0,
            ..TrainConfig::default()
        };
        let model = train(
            train_set.features.view(),
            train_set.labels.view(),
            &config,
            None,
            |_| {},
        )
        .unwrap();
        let u = model.forward(train_set.features.view());
        assert_eq!(u.dim(), (100, 16));
        assert!(u.iter().all(|v| v.abs() < 1.0));
        let codes = model.encode(train_set.features.view());
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(code, &ics_core::code::pack_signs(&u.row(i).to_vec()));
        }
        assert_eq!(
            PackedCodes::from_codes(&codes).unwrap(),
            model.encode_packed(train_set.features.view())
        );
        // Exporter view: two Gemm layers (in, out), ReLU then Tanh.
        assert_eq!(model.layers()[0].weight().dim(), (16, 8));
        assert_eq!(model.layers()[1].weight().dim(), (8, 16));
        assert_eq!(
            model.activations(),
            vec![
                super::super::head::Activation::Relu,
                super::super::head::Activation::Tanh
            ]
        );
        // Forward on the first row by hand through the exported layout.
        let l = model.layers();
        let x = train_set.features.slice(s![0..1, ..]);
        let h = (x.dot(l[0].weight()) + l[0].bias()).mapv(|v: f32| v.max(0.0));
        let z = (h.dot(l[1].weight()) + l[1].bias()).mapv(f32::tanh);
        assert!((&z.row(0) - &u.row(0)).iter().all(|d| d.abs() < 1e-5));
    }

    #[test]
    fn data_errors_name_the_row() {
        let f = Array2::<f32>::zeros((3, 4));
        let c = TrainConfig {
            bits: 8,
            epochs: 1,
            warmup_epochs: 0,
            ..TrainConfig::default()
        };
        let err = |f: &Array2<f32>, l: &Array2<u8>| {
            train(f.view(), l.view(), &c, None, |_| {})
                .unwrap_err()
                .to_string()
        };
        let e = err(&f, &array![[1u8, 0], [0, 0], [0, 1]]);
        assert!(e.contains("label row 1 has no label"), "{e}");
        let e = err(&f, &array![[1u8, 0], [2, 0], [0, 1]]);
        assert!(e.contains("row 1, column 0 is 2"), "{e}");
        let mut bad = f.clone();
        bad[[2, 1]] = f32::NAN;
        let e = err(&bad, &array![[1u8, 0], [1, 0], [0, 1]]);
        assert!(e.contains("feature row 2"), "{e}");
        let e = err(&f, &array![[1u8, 0], [1, 0]]);
        assert!(e.contains("3 feature rows but 2 label rows"), "{e}");
        // Bad parameters are refused before any work.
        let e = train(
            f.view(),
            array![[1u8], [1], [1]].view(),
            &TrainConfig {
                bits: 12,
                ..c.clone()
            },
            None,
            |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiple of 8"), "{e}");
        // PGD that would diverge on the entropy term.
        let stiff = TrainConfig {
            eta: 10.0,
            lambda_r: 0.1,
            ..c.clone()
        };
        let e = train(
            f.view(),
            array![[1u8, 1], [1, 0], [0, 1]].view(),
            &stiff,
            None,
            |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("would diverge"), "{e}");
        // bool labels are accepted.
        train(
            f.view(),
            array![[true, false], [true, true], [false, true]].view(),
            &c,
            None,
            |_| {},
        )
        .unwrap();
        // Evaluation set of the wrong width.
        let other = Array2::<f32>::zeros((2, 5));
        let l2 = array![[1u8, 0], [0, 1]];
        let set = EvalSet::new(other.view(), l2.view(), other.view(), l2.view(), 10).unwrap();
        let e = train(
            f.view(),
            array![[1u8, 0], [1, 0], [0, 1]].view(),
            &c,
            Some(&set),
            |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("5 dimensions"), "{e}");
    }
}
