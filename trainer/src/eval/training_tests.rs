//! Training scored by the evaluation protocol: end-to-end runs of `ics::train` on synthetic
//! data, checked with the retrieval report and the weight-vs-area agreement (tests only; they
//! sit here, above `ics`, so `ics` needs nothing from `eval`).

use ndarray::{array, Array2};

use super::report::{RetrievalReport, TrainReport};
use super::set::EvalSet;
use super::weight_area_agreement;
use crate::ics::synthetic::Synthetic;
use crate::ics::train::tests::{data, small_config};
use crate::ics::{train, train_silently, InstanceWeights, Method, TrainConfig, WeightUpdate};

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
    assert_eq!(v["retrieval"]["tie_rule"], crate::eval::TIE_RULE);
    assert!(
        v["epochs"][11]["diagnostics"]["entropy_mean"]
            .as_f64()
            .unwrap()
            < 1.0
    );
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
    let model =
        train_silently(train_set.features.view(), train_set.labels.view(), &config).unwrap();
    let r = weight_area_agreement(model.weights(), train_set.areas.view()).unwrap();
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
    let model = train_silently(
        train_set.features.view(),
        train_set.labels.view(),
        &collapsed,
    )
    .unwrap();
    let c = weight_area_agreement(model.weights(), train_set.areas.view()).unwrap();
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
fn an_evaluation_set_of_another_width_is_refused() {
    let f = Array2::<f32>::zeros((3, 4));
    let c = TrainConfig {
        bits: 8,
        epochs: 1,
        warmup_epochs: 0,
        ..TrainConfig::default()
    };
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

#[test]
fn epoch_diagnostics_match_the_weights_and_the_areas() {
    let (train_set, test_set) = data();
    let set = eval_set(&train_set, &test_set).with_train_areas(Some(train_set.areas.view()));
    let mut logs = Vec::new();
    let model = train(
        train_set.features.view(),
        train_set.labels.view(),
        &small_config(),
        Some(&set),
        |l| logs.push(l.clone()),
    )
    .unwrap();
    let multi = (0..600)
        .filter(|&i| model.weights().labels(i).len() >= 2)
        .count();
    for l in &logs {
        let d = l.diagnostics.as_ref().expect("logged every epoch");
        assert_eq!(d.images, multi);
        // Every multi-label image is visited once per epoch.
        assert!(d.loss_range_mean > 0.0 && d.loss_range_std >= 0.0, "{d:?}");
        assert!(d.spearman.is_some() && d.top1.is_some());
        if !l.weights_updated {
            // Warm-up: uniform weights, normalised entropy exactly 1, no ranking.
            assert!((d.entropy_mean - 1.0).abs() < 1e-12 && d.entropy_std < 1e-12);
            assert_eq!(d.spearman, Some(0.0));
        }
    }
    // The last epoch's numbers are those of the final weights.
    let last = logs.last().unwrap().diagnostics.clone().unwrap();
    let a = weight_area_agreement(model.weights(), train_set.areas.view()).unwrap();
    assert_eq!(last.spearman, Some(a.raw.learned.spearman));
    assert_eq!(last.top1, Some(a.raw.learned.top1));
    let want = crate::ics::diagnostics::weight_diagnostics(model.weights(), &[]);
    assert_eq!(
        (last.entropy_mean, last.entropy_std),
        (want.entropy_mean, want.entropy_std)
    );
    assert!(last.entropy_mean < 1.0, "{last:?}");
    // Known weights: area shares themselves agree perfectly with the areas.
    let lists: Vec<Vec<usize>> = (0..600)
        .map(|i| model.weights().labels(i).to_vec())
        .collect();
    let mut shares = Array2::<f64>::zeros((600, 6));
    for (i, l) in lists.iter().enumerate() {
        let total: f64 = l.iter().map(|&k| train_set.areas[[i, k]]).sum();
        for &k in l {
            shares[[i, k]] = train_set.areas[[i, k]] / total;
        }
    }
    let exact = InstanceWeights::from_parts(shares, lists).unwrap();
    use crate::ics::EpochEval;
    let (rho, top1) = set.weight_agreement(&exact).unwrap();
    assert!(
        (rho - 1.0).abs() < 1e-12 && (top1 - 1.0).abs() < 1e-12,
        "{rho} {top1}"
    );
    // Without areas, nothing is claimed.
    assert_eq!(
        eval_set(&train_set, &test_set).weight_agreement(&exact),
        None
    );
}

#[test]
fn orthohash_trains_and_can_learn_ics_weights() {
    let (train_set, test_set) = data();
    let set = eval_set(&train_set, &test_set);
    let config = TrainConfig {
        method: Method::Orthohash,
        epochs: 6,
        ..small_config()
    };
    let model =
        train_silently(train_set.features.view(), train_set.labels.view(), &config).unwrap();
    let report = RetrievalReport::evaluate(&model, &set, false);
    assert!(
        report.map_at_r >= report.random_codes_map_at_r + 0.2,
        "OrthoHash mAP {} vs random codes {}",
        report.map_at_r,
        report.random_codes_map_at_r
    );
    // 1/|L| targets: the weights never move.
    assert_eq!(
        model.weights(),
        &InstanceWeights::uniform(
            (0..600)
                .map(|i| model.weights().labels(i).to_vec())
                .collect(),
            6
        )
    );
    assert!(model.history().iter().all(|l| !l.weights_updated));
    // With ICS's weights, they are learned after the warm-up.
    let mut learned = config.clone();
    learned.orthohash.ics_weights = true;
    learned.lambda_r = 0.05;
    let m2 = train_silently(train_set.features.view(), train_set.labels.view(), &learned).unwrap();
    assert!(m2.history()[2].weights_updated && !m2.history()[1].weights_updated);
    let d = m2.history().last().unwrap().diagnostics.clone().unwrap();
    assert!(d.entropy_mean < 0.99, "{d:?}");
    assert_ne!(m2.head(), model.head());
    // The configuration JSON of the other methods is unchanged by the new parameters.
    let json = serde_json::to_string(&small_config()).unwrap();
    assert!(!json.contains("orthohash"), "{json}");
    assert!(serde_json::to_string(&learned)
        .unwrap()
        .contains("\"ics_weights\":true"));
}
