//! The training loop: ICS (or the CSQ baseline) on the feature rows of a [`FeatureSource`]:
//! precomputed features of a frozen backbone ([`train`]) or a backbone trained along
//! ([`train_source`]).
//!
//! Per epoch the training set is shuffled (seeded) and cut into mini-batches. Per mini-batch:
//! 1. the source gives the batch's feature rows; forward the head (dropout on) to get logits
//!    `z` and codes `u = tanh z`;
//! 2. ICS, after the warm-up epochs: with the network fixed, update that batch's per-image
//!    weights from the per-label losses `l(u_i, c_k)` (`n_pgd` PGD steps, or the closed form);
//! 3. targets: ICS `c̄_i = Σ_k w_ik c_k` (soft), CSQ `sign(mean_k c_k)` with the run's
//!    tie-break vector;
//! 4. one optimiser step on the network for `mean_i [l(u_i, c̄_i) + λ_q quant(u_i)]`: Adam on
//!    the head and, when the source trains (fine-tuning), `∂L/∂features` back to the source,
//!    which steps its backbone.
//!
//! Reproducible: the centres, the initial weights, the shuffles, dropout and the CSQ
//! tie-break come from separate streams of one seed, and every parallel reduction has a
//! fixed order, so the same seed and data give bit-identical heads and codes. With
//! [`Checkpointing`], the loop's whole state is written after each epoch and a resumed run
//! continues exactly where the checkpoint left it ([`super::checkpoint`]).

use std::time::Instant;

use super::adam::Adam;
use super::centres::Centres;
use super::checkpoint::{Checkpoint, Checkpointing};
use super::config::{rng, Method, Stream, TrainConfig, WeightUpdate};
use super::diagnostics::{loss_range, weight_diagnostics};
use super::head::HashHead;
use super::loss::{batch_objective, csq_centroids, label_losses, soft_centroids, BatchLoss};
use super::model::{encode_packed, EpochLog, IcsModel};
use super::orthohash::orthohash_batch_objective;
use super::source::{FeatureSource, FrozenFeatures};
use super::weights::InstanceWeights;
use crate::codes::PackedCodes;
use anyhow::{bail, ensure, Result};
use ndarray::{ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use sha2::{Digest, Sha256};

/// An evaluation the training loop runs on its evaluation epochs (every `eval_every` epochs
/// and after the last), recorded in [`EpochLog::map`]. The loop knows no retrieval protocol:
/// `eval::EvalSet` implements this with mAP@R of the query codes against the database codes.
pub trait EpochEval {
    /// Columns of the rows it encodes: the training features', or, when the source trains,
    /// its evaluation inputs' ([`FeatureSource::eval_input_dim`]).
    fn feature_dim(&self) -> usize;
    /// Classes of its labels (must be those of the training labels).
    fn classes(&self) -> usize;
    /// The score of the current network; `encode` gives the packed codes of its rows.
    fn score(&self, encode: &dyn Fn(ArrayView2<f32>) -> PackedCodes) -> f64;
    /// (Spearman, top-1) agreement of the training images' weights with their true area
    /// shares, where those are known; computed every epoch (it is cheap).
    fn weight_agreement(&self, _weights: &InstanceWeights) -> Option<(f64, f64)> {
        None
    }
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
    if let Some(i) = features
        .rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        bail!("feature row {i} is not finite (NaN or infinity)");
    }
    label_lists(labels)
}

/// Each image's label list from multi-hot 0/1 labels. Errors name the row.
pub fn label_lists<L: Copy + Into<u8>>(labels: ArrayView2<L>) -> Result<Vec<Vec<usize>>> {
    ensure!(labels.nrows() >= 1, "no training images");
    ensure!(labels.ncols() >= 1, "labels have no columns (no classes)");
    let mut lists = Vec::with_capacity(labels.nrows());
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

/// [`train`] with no evaluation and no epoch log: what tests and examples call.
pub fn train_silently<L: Copy + Into<u8>>(
    features: ArrayView2<f32>,
    labels: ArrayView2<L>,
    config: &TrainConfig,
) -> Result<IcsModel> {
    train(features, labels, config, None, |_| {})
}

/// Trains a hash head on `features` (n, d) with multi-hot `labels` (n, C) of 0/1 (`u8` or
/// `bool`). `eval`, if given, is scored every `config.eval_every` epochs and after the last;
/// `on_epoch` is called once per epoch.
pub fn train<L: Copy + Into<u8>>(
    features: ArrayView2<f32>,
    labels: ArrayView2<L>,
    config: &TrainConfig,
    eval: Option<&dyn EpochEval>,
    on_epoch: impl FnMut(&EpochLog),
) -> Result<IcsModel> {
    train_checkpointed(features, labels, config, eval, None, on_epoch)
}

/// [`train`], writing its state after each epoch (and resuming from it) with `checkpointing`.
pub fn train_checkpointed<L: Copy + Into<u8>>(
    features: ArrayView2<f32>,
    labels: ArrayView2<L>,
    config: &TrainConfig,
    eval: Option<&dyn EpochEval>,
    checkpointing: Option<&Checkpointing>,
    on_epoch: impl FnMut(&EpochLog),
) -> Result<IcsModel> {
    config.validate()?;
    validate_data(features, labels)?;
    let mut source = FrozenFeatures::new(features);
    train_source(&mut source, labels, config, eval, checkpointing, on_epoch)
}

/// What identifies a run's data: the source's fingerprint and the labels.
fn run_fingerprint(source: &dyn FeatureSource, lists: &[Vec<usize>], classes: usize) -> String {
    let mut h = Sha256::new();
    h.update(source.fingerprint().as_bytes());
    h.update((classes as u64).to_le_bytes());
    for l in lists {
        for &k in l {
            h.update((k as u64).to_le_bytes());
        }
        h.update([0xff]);
    }
    ics_codes::code::to_hex(&h.finalize())
}

/// Trains a hash head (and whatever `source` trains) on the rows `source` gives, with
/// multi-hot `labels` (n, C). With `checkpointing`, the loop's state is written after every
/// `every` epochs and after the last, and `resume` continues from the folder's checkpoint.
pub fn train_source<L: Copy + Into<u8>>(
    source: &mut dyn FeatureSource,
    labels: ArrayView2<L>,
    config: &TrainConfig,
    eval: Option<&dyn EpochEval>,
    checkpointing: Option<&Checkpointing>,
    mut on_epoch: impl FnMut(&EpochLog),
) -> Result<IcsModel> {
    config.validate()?;
    let lists = label_lists(labels)?;
    let n = source.len();
    let d = source.feature_dim();
    ensure!(n >= 1, "no training images");
    ensure!(
        labels.nrows() == n,
        "{n} training images but {} label rows",
        labels.nrows()
    );
    ensure!(
        config.finetune.mode.trains_backbone() == source.trains(),
        "finetune mode {} with a source that {} the backbone",
        config.finetune.mode,
        if source.trains() { "trains" } else { "freezes" }
    );
    let classes = labels.ncols();
    if let Some(e) = eval {
        ensure!(
            e.feature_dim() == source.eval_input_dim(),
            "evaluation features have {} dimensions, the training source's {}",
            e.feature_dim(),
            source.eval_input_dim()
        );
        ensure!(
            e.classes() == classes,
            "evaluation labels have {} classes, training labels {classes}",
            e.classes()
        );
    }
    if let Some(c) = checkpointing {
        ensure!(c.every >= 1, "checkpoint every 0 epochs: must be >= 1");
    }
    let learns = config.learns_weights();
    if learns && config.weight_update == WeightUpdate::Pgd {
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
    let fingerprint = checkpointing.map(|_| run_fingerprint(source, &lists, classes));

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
    let mut weights = InstanceWeights::uniform(lists.clone(), classes);
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
    let mut first_epoch = 0;

    if let Some(c) = checkpointing.filter(|c| c.resume) {
        let cp = Checkpoint::load(&c.file())?;
        cp.check_resumes(
            config,
            fingerprint.as_deref().expect("set with checkpointing"),
        )?;
        ensure!(
            cp.head.input_dim() == d && cp.head.bits() == config.bits,
            "the checkpoint's head does not fit this run"
        );
        ensure!(
            cp.order.len() == n && cp.weights.dim() == (n, classes),
            "the checkpoint is for {} images of {} classes, this run has {n} of {classes}",
            cp.weights.nrows(),
            cp.weights.ncols()
        );
        head = cp.head;
        adam.restore(cp.adam)?;
        weights = InstanceWeights::from_parts(cp.weights, lists)?;
        order = cp.order;
        shuffle_rng.set_word_pos(cp.shuffle_word_pos);
        dropout_rng.set_word_pos(cp.dropout_word_pos);
        history = cp.history;
        source.restore(cp.source)?;
        first_epoch = cp.epochs_done;
    }

    for epoch in first_epoch..config.epochs {
        let started = Instant::now();
        let lr = config.lr_at(epoch);
        let update_weights = learns && epoch >= config.warmup_epochs;
        order.shuffle(&mut shuffle_rng);
        let (mut sum, mut neg_entropy) = (BatchLoss::default(), 0.0);
        let mut loss_ranges = Vec::new();
        for batch in order.chunks(config.batch_size) {
            let x = source.batch(batch, epoch)?;
            let cache = head.forward_train(x, Some(&mut dropout_rng));

            // The per-label losses of every multi-label image, during warm-up and for CSQ
            // too: their spread against λ_r is what decides whether weights can move.
            for (row, &i) in batch.iter().enumerate() {
                let multi = weights.labels(i).len() >= 2;
                if !multi && !update_weights {
                    continue;
                }
                let losses = label_losses(cache.z.row(row), &centres, weights.labels(i));
                if multi {
                    loss_ranges.push(loss_range(&losses));
                }
                if update_weights {
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
            let (loss, dz) = match config.method {
                Method::Ics => {
                    let targets =
                        soft_centroids(weights.matrix().select(Axis(0), batch).view(), &centres);
                    batch_objective(
                        cache.z.view(),
                        cache.u.view(),
                        targets.view(),
                        config.lambda_q,
                    )
                }
                Method::Csq => {
                    let l: Vec<&[usize]> = batch.iter().map(|&i| weights.labels(i)).collect();
                    let targets = csq_centroids(&l, &centres, &tie_break);
                    batch_objective(
                        cache.z.view(),
                        cache.u.view(),
                        targets.view(),
                        config.lambda_q,
                    )
                }
                Method::Orthohash => {
                    // Weights stay 1/|L| unless the run learns them.
                    let l: Vec<&[usize]> = batch.iter().map(|&i| weights.labels(i)).collect();
                    orthohash_batch_objective(
                        cache.z.view(),
                        cache.u.view(),
                        centres.matrix().view(),
                        &l,
                        weights.matrix().select(Axis(0), batch).view(),
                        config.orthohash.scale,
                        config.orthohash.margin,
                        config.lambda_q,
                    )
                }
            };
            let (grads, dx) = head.backward(&cache, dz.view(), source.trains());
            adam.step(&mut head, &grads, lr);
            if let Some(dx) = dx {
                source.backward(dx.view(), epoch)?;
            }

            let b = batch.len() as f64;
            sum.centre += loss.centre * b;
            sum.quantization += loss.quantization * b;
            if learns {
                neg_entropy -= batch.iter().map(|&i| weights.entropy(i)).sum::<f64>();
            }
        }

        let epoch_no = epoch + 1;
        let evaluate = epoch_no % config.eval_every == 0 || epoch_no == config.epochs;
        let map = match eval {
            Some(e) if evaluate => {
                let src: &dyn FeatureSource = source;
                Some(e.score(&|x| encode_packed(&head, src.eval_features(x).view())))
            }
            _ => None,
        };
        let mut diagnostics = weight_diagnostics(&weights, &loss_ranges);
        if let Some((rho, top1)) = eval.and_then(|e| e.weight_agreement(&weights)) {
            diagnostics.spearman = Some(rho);
            diagnostics.top1 = Some(top1);
        }
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
            diagnostics: Some(diagnostics),
        };
        history.push(log.clone());
        if let Some(c) = checkpointing {
            if epoch_no % c.every == 0 || epoch_no == config.epochs {
                Checkpoint {
                    epochs_done: epoch_no,
                    config: config.clone(),
                    fingerprint: fingerprint.clone().expect("set with checkpointing"),
                    head: head.clone(),
                    adam: adam.state().clone(),
                    weights: weights.matrix().to_owned(),
                    order: order.clone(),
                    shuffle_word_pos: shuffle_rng.get_word_pos(),
                    dropout_word_pos: dropout_rng.get_word_pos(),
                    history: history.clone(),
                    source: source.state(),
                }
                .save(&c.file())?;
            }
        }
        on_epoch(&log);
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
pub(crate) mod tests {
    use super::super::synthetic::{make, Synthetic};
    use super::*;
    use ndarray::{array, s, Array2};

    /// 32-d features, 6 classes, up to 3 labels: train 600 (also the database), 150 queries.
    pub(crate) fn data() -> (Synthetic, Synthetic) {
        (make(600, 32, 6, 3, 0.7, 1), make(150, 32, 6, 3, 0.7, 2))
    }

    /// 12 epochs (2 of warm-up) of a [64] head, 32 bits, evaluated every 4 epochs.
    pub(crate) fn small_config() -> TrainConfig {
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
            let model = train_silently(train_set.features.view(), train_set.labels.view(), &config)
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
        let model =
            train_silently(train_set.features.view(), train_set.labels.view(), &config).unwrap();
        let u = model.forward(train_set.features.view());
        assert_eq!(u.dim(), (100, 16));
        assert!(u.iter().all(|v| v.abs() < 1.0));
        let codes = model.encode(train_set.features.view());
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(code, &ics_codes::code::pack_signs(&u.row(i).to_vec()));
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
            train_silently(f.view(), l.view(), &c)
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
    }

    /// Trains `config` on small synthetic data with checkpoints in `dir`.
    fn run(config: &TrainConfig, dir: &std::path::Path, resume: bool) -> IcsModel {
        let data = make(120, 16, 4, 2, 0.6, 7);
        let c = Checkpointing {
            dir: dir.to_path_buf(),
            every: 1,
            resume,
        };
        train_checkpointed(
            data.features.view(),
            data.labels.view(),
            config,
            None,
            Some(&c),
            |_| {},
        )
        .unwrap()
    }

    #[test]
    fn extending_a_clamped_short_run() {
        let dir = std::env::temp_dir().join(format!("ics-resume-warmup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let base = TrainConfig {
            bits: 16,
            hidden: vec![],
            batch_size: 16,
            seed: 4,
            ..TrainConfig::default()
        };
        let with = |epochs, warmup_epochs| TrainConfig {
            epochs,
            warmup_epochs,
            ..base.clone()
        };
        let strip = |m: &IcsModel| {
            let h: Vec<EpochLog> = m
                .history()
                .iter()
                .map(|l| EpochLog {
                    seconds: 0.0,
                    ..l.clone()
                })
                .collect();
            (m.head().clone(), m.weights().clone(), h)
        };

        // A run of 2 epochs: the default warm-up of 2 is clamped to 1. Extended to 4 epochs,
        // whose default warm-up is 2: it keeps 1, since epoch 2 learned weights already, says
        // so, and ends where an unbroken run with --warmup-epochs 1 ends.
        run(&with(2, 1), &dir.join("a"), false);
        let cp =
            Checkpoint::load(&dir.join("a").join(super::super::checkpoint::FILE_NAME)).unwrap();
        let mut longer = with(4, 2);
        let line = cp.resume_warmup(&mut longer).unwrap();
        assert_eq!(longer.warmup_epochs, 1);
        assert!(
            line.contains(
                "resuming after epoch 2 with the checkpoint's warm-up of 1 epoch \
                           (clamped to fit its run of 2 epochs), not the 2 epochs a run of 4 \
                           epochs has from the start: weights have been learned since epoch 2"
            ) && line.contains("unbroken run with --warmup-epochs 1"),
            "{line}"
        );
        let resumed = run(&longer, &dir.join("a"), true);
        let unbroken = run(&with(4, 1), &dir.join("b"), false);
        assert_eq!(strip(&resumed), strip(&unbroken));

        // Stopped after epoch 1 of that 2-epoch run (a 1-epoch run with the same warm-up is
        // the same state): every epoch done was warm-up, so it takes the longer run's warm-up
        // and ends where that run ends.
        run(&with(1, 1), &dir.join("c"), false);
        let path = dir.join("c").join(super::super::checkpoint::FILE_NAME);
        let mut cp = Checkpoint::load(&path).unwrap();
        cp.config.epochs = 2;
        cp.save(&path).unwrap();
        let mut longer = with(4, 2);
        let line = cp.resume_warmup(&mut longer).unwrap();
        assert_eq!(longer.warmup_epochs, 2);
        assert!(
            line.contains(
                "still in the warm-up: continuing with the warm-up of a run of 4 \
                           epochs, 2 epochs, not the checkpoint's 1 epoch"
            ),
            "{line}"
        );
        let resumed = run(&longer, &dir.join("c"), true);
        let unbroken = run(&with(4, 2), &dir.join("d"), false);
        assert_eq!(strip(&resumed), strip(&unbroken));

        // CSQ learns no weights: the warm-up changes nothing, and nothing is said.
        let mut csq = TrainConfig {
            method: crate::ics::Method::Csq,
            ..with(4, 2)
        };
        assert_eq!(cp.resume_warmup(&mut csq), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
