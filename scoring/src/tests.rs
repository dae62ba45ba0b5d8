use super::*;

#[test]
fn pooling_by_hand() {
    // 2 channels, 2x3 frame; errors per pixel after averaging channels: [[1, 0, 4], [0, 0, 1]].
    let target = vec![0f32; 12];
    let pred = vec![1.0, 0.0, 2.0, 0.0, 0.0, 1.0, /* c1 */ 1.0, 0.0, -2.0, 0.0, 0.0, -1.0];
    let mean = ErrorPooling::FrameMean.pool(&pred, &target, 2, 2, 3).unwrap();
    assert!((mean - 1.0).abs() < 1e-6, "{mean}");
    // 2x2 boxes at stride 1: [1,0,0,0] -> 0.25, [0,4,0,1] -> 1.25.
    let wm = ErrorPooling::WindowMax { window: 2, stride: 1 }.pool(&pred, &target, 2, 2, 3).unwrap();
    assert!((wm - 1.25).abs() < 1e-6, "{wm}");
    // A window larger than the frame is clamped to the frame: the frame mean.
    let big = ErrorPooling::WindowMax { window: 8, stride: 4 }.pool(&pred, &target, 2, 2, 3).unwrap();
    assert!((big - 1.0).abs() < 1e-6, "{big}");
    // The same from box means computed once: the map is [[1, 0, 4], [0, 0, 1]].
    let map = [1.0, 0.0, 4.0, 0.0, 0.0, 1.0];
    let boxes = window_means(&map, 2, 3, 2, 1);
    assert_eq!(ErrorPooling::WindowMax { window: 2, stride: 1 }.pool_boxes(&boxes, 2, 3, None).unwrap(), wm);
    let e = ErrorPooling::FrameMean.pool_boxes(&boxes, 2, 3, None).unwrap_err().to_string();
    assert!(e.contains("box means") && e.contains("frame_mean"), "{e}");
    let e = ErrorPooling::WindowMaxZ { window: 2, stride: 1 }.pool_boxes(&boxes, 2, 3, None).unwrap_err().to_string();
    assert!(e.contains("needs the per-region statistics"), "{e}");
    let err = ErrorPooling::FrameMean.pool(&pred[..11], &target, 2, 2, 3).unwrap_err().to_string();
    assert!(err.contains("pred") && err.contains("11"), "{err}");
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// AUC by brute force over all (positive, negative) pairs, ties = 1/2.
fn auc_pairs(scores: &[f32], labels: &[u8]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if labels[i] == 1 && labels[j] == 0 {
                den += 1.0;
                if si > sj {
                    num += 1.0;
                } else if si == sj {
                    num += 0.5;
                }
            }
        }
    }
    num / den
}

#[test]
fn auc_hand_worked() {
    assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]), Some(0.75));
    assert_eq!(roc_auc(&[0.1, 0.2, 0.3, 0.4], &[0, 0, 1, 1]), Some(1.0));
    assert_eq!(roc_auc(&[0.4, 0.3, 0.2, 0.1], &[0, 0, 1, 1]), Some(0.0));
    // Ties between classes count one half.
    assert_eq!(roc_auc(&[0.1, 0.5, 0.5, 0.9], &[0, 0, 1, 1]), Some(0.875));
    assert_eq!(roc_auc(&[0.5; 4], &[0, 1, 0, 1]), Some(0.5));
    // Ties within a class do not matter.
    assert_eq!(roc_auc(&[0.2, 0.2, 0.7, 0.7], &[0, 0, 1, 1]), Some(1.0));
    // -0.0 ties with 0.0.
    assert_eq!(roc_auc(&[-0.0, 0.0], &[0, 1]), Some(0.5));
    // Infinite scores are ordered.
    assert_eq!(roc_auc(&[f32::NEG_INFINITY, f32::INFINITY, 0.0], &[0, 1, 0]), Some(1.0));
}

#[test]
fn auc_undefined_cases() {
    assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
    assert_eq!(roc_auc(&[0.1, 0.2], &[0, 0]), None);
    assert_eq!(roc_auc(&[], &[]), None);
    assert_eq!(roc_auc(&[0.1, 0.2], &[0]), None);
    assert_eq!(roc_auc(&[0.1, f32::NAN], &[0, 1]), None);
    assert_eq!(roc_auc(&[0.1, 0.2], &[0, 2]), None);
}

#[test]
fn auc_matches_pair_counting_with_many_ties() {
    // Deterministic pseudo-random data on a coarse grid (lots of ties).
    let mut state = 0x1234_5678_u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    for n in [2usize, 7, 50, 333] {
        let scores: Vec<f32> = (0..n).map(|_| (next() % 10) as f32 / 10.0).collect();
        let mut labels: Vec<u8> = (0..n).map(|_| (next() % 3 == 0) as u8).collect();
        labels[0] = 0;
        labels[1] = 1;
        let got = roc_auc(&scores, &labels).unwrap();
        assert!(close(got, auc_pairs(&scores, &labels), 1e-12), "n={n}");
    }
}

#[test]
fn roc_curve_points() {
    let pts = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
    assert_eq!(pts, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
    // Ties make one diagonal step.
    let pts = roc_curve(&[0.5, 0.5], &[0, 1]).unwrap();
    assert_eq!(pts, vec![(0.0, 0.0), (1.0, 1.0)]);
    assert!(roc_curve(&[0.5, 0.5], &[1, 1]).is_none());
}

#[test]
fn min_max_basic() {
    assert_eq!(min_max(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
    assert_eq!(min_max(&[3.0, 3.0]), vec![0.0, 0.0]);
    assert_eq!(min_max(&[]), Vec::<f32>::new());
    let y = min_max(&[1.0, f32::NAN, 3.0, f32::INFINITY]);
    assert_eq!(y[0], 0.0);
    assert!(y[1].is_nan());
    assert_eq!(y[2], 1.0);
    assert_eq!(y[3], 1.0);
}

#[test]
fn gaussian_identity_and_constants() {
    let x = [1.0, 5.0, -2.0, 0.5];
    assert_eq!(gaussian_smooth(&x, 0.0), x.to_vec());
    assert_eq!(gaussian_smooth(&x, -1.0), x.to_vec());
    assert_eq!(gaussian_smooth(&x, f32::NAN), x.to_vec());
    for sigma in [0.3, 1.0, 5.0, 50.0, f32::INFINITY] {
        for v in gaussian_smooth(&[2.5; 37], sigma) {
            assert!(close(f64::from(v), 2.5, 1e-6), "sigma {sigma}: {v}");
        }
    }
}

#[test]
fn gaussian_preserves_sum_of_interior_impulse_and_is_symmetric() {
    let mut x = vec![0.0f32; 101];
    x[50] = 1.0;
    let y = gaussian_smooth(&x, 5.0);
    let sum: f64 = y.iter().map(|&v| f64::from(v)).sum();
    assert!(close(sum, 1.0, 1e-6), "sum {sum}");
    for k in 1..=20 {
        assert!(close(f64::from(y[50 - k]), f64::from(y[50 + k]), 1e-9));
        assert!(y[50 + k] < y[50 + k - 1]);
    }
    // Truncated at 4 sigma = 20 samples.
    assert!(y[70] > 0.0);
    assert_eq!(y[71], 0.0);
    // Peak value = 1 / sum of the kernel.
    let ksum: f64 = (-20..=20).map(|k: i32| (-(f64::from(k * k)) / 50.0).exp()).sum();
    assert!(close(f64::from(y[50]), 1.0 / ksum, 1e-6));
    // Preserves the mean of a linear ramp in the interior (odd kernel moments vanish).
    let ramp: Vec<f32> = (0..101).map(|i| i as f32).collect();
    let r = gaussian_smooth(&ramp, 3.0);
    assert!(close(f64::from(r[50]), 50.0, 1e-4));
}

#[test]
fn gaussian_edge_renormalisation_and_nan() {
    // At the first sample of a step the window holds only the samples that exist.
    let x = [1.0f32, 0.0, 0.0];
    let y = gaussian_smooth(&x, 1.0);
    let w1 = (-0.5f64).exp();
    let w2 = (-2.0f64).exp();
    assert!(close(f64::from(y[0]), 1.0 / (1.0 + w1 + w2), 1e-6));
    // NaN samples are skipped.
    let y = gaussian_smooth(&[1.0, f32::NAN, 1.0], 1.0);
    assert!(y.iter().all(|&v| close(f64::from(v), 1.0, 1e-6)));
    let y = gaussian_smooth(&[f32::NAN, f32::NAN], 1.0);
    assert!(y.iter().all(|v| v.is_nan()));
}

#[test]
fn offline_scores_combination() {
    let visual = [1.0, 3.0, 2.0, 5.0];
    let semantic = [0.0, 0.0, 1.0, 0.5];
    let cfg = OfflineScoring { sigma: 0.0, visual_weight: 0.8, semantic_weight: 0.2 };
    let got = offline_scores(&visual, Some(&semantic), &cfg);
    let want = [0.0, 0.8 * 0.5, 0.8 * 0.25 + 0.2, 0.8 + 0.2 * 0.5];
    for (g, w) in got.iter().zip(want) {
        assert!(close(f64::from(*g), w, 1e-6), "{got:?}");
    }
    // Weights are normalised by their sum.
    let cfg2 = OfflineScoring { sigma: 0.0, visual_weight: 4.0, semantic_weight: 1.0 };
    let got2 = offline_scores(&visual, Some(&semantic), &cfg2);
    for (a, b) in got.iter().zip(&got2) {
        assert!(close(f64::from(*a), f64::from(*b), 1e-6));
    }
    // Without semantic: min-max of the visual error alone.
    assert_eq!(offline_scores(&visual, None, &cfg), vec![0.0, 0.5, 0.25, 1.0]);
    // Smoothing applied afterwards.
    let cfg5 = OfflineScoring::default();
    assert_eq!(cfg5.sigma, 5.0);
    assert_eq!(offline_scores(&visual, None, &cfg5), gaussian_smooth(&min_max(&visual), 5.0));
    // Errors are reported by the try_ variant; the plain one falls back to visual alone.
    assert_eq!(try_offline_scores(&visual, Some(&semantic[..3]), &cfg), Err(ScoringError::LengthMismatch { visual: 4, semantic: 3 }));
    assert_eq!(offline_scores(&visual, Some(&semantic[..3]), &cfg), vec![0.0, 0.5, 0.25, 1.0]);
    let bad = OfflineScoring { sigma: 1.0, visual_weight: -1.0, semantic_weight: 0.2 };
    assert!(matches!(try_offline_scores(&visual, None, &bad), Err(ScoringError::BadParameter { name: "visual_weight", .. })));
}

#[test]
fn fit_known_statistics() {
    let cal = CausalCalibration::fit(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], None, 5.0, 0.8, 0.2).unwrap();
    assert_eq!(cal.visual_mean, 5.0);
    assert_eq!(cal.visual_std, 2.0);
    assert_eq!((cal.semantic_mean, cal.semantic_std, cal.semantic_weight), (0.0, 1.0, 0.0));
    assert_eq!((cal.sigma, cal.visual_weight), (5.0, 0.8));
    // The largest normal z, (9 - 5) / 2, and the error it corresponds to: the saturation cap.
    assert_eq!((cal.visual_z_max, cal.visual_cap()), (Some(2.0), Some(9.0)));
    assert_eq!(saturate(&[1.0, 9.0, 12.0, f32::NAN], 9.0)[..3], [1.0, 9.0, 9.0]);
    assert!(saturate(&[f32::NAN], 9.0)[0].is_nan());
    assert_eq!(CausalCalibration { visual_z_max: None, ..cal.clone() }.visual_cap(), None);
    // Score sets: without a cap the raw scoring alone; with one the raw scoring, saturated beside.
    let (e, l) = ([1.0, 3.0, 12.0, 2.0, 0.5, 10.0], [0u8, 1, 1, 0, 0, 1]);
    let cfg = OfflineScoring { sigma: 0.0, ..OfflineScoring::PED2 };
    let raw = try_offline_scores(&e, None, &cfg).unwrap();
    let (top, beside) = offline_score_sets([("c", &e[..], None, &l[..])], &cfg, None).unwrap();
    assert_eq!(top.per_clip["c"].scores, raw);
    assert!(beside.is_none());
    let (top, beside) = offline_score_sets([("c", &e[..], None, &l[..])], &cfg, Some(4.0)).unwrap();
    assert_eq!(top.per_clip["c"].scores, raw);
    let beside = beside.unwrap().per_clip["c"].scores.clone();
    assert_eq!(beside, try_offline_scores(&saturate(&e, 4.0), None, &cfg).unwrap());
    assert_ne!(beside, raw);
    // A semantic stream of the wrong length is refused, capped or not.
    for cap in [None, Some(4.0)] {
        assert!(offline_score_sets([("c", &e[..], Some(&e[..2]), &l[..])], &cfg, cap).is_err());
    }

    let cal = CausalCalibration::fit(&[1.0, 3.0], Some(&[0.5, 0.5]), 2.0, 0.8, 0.2).unwrap();
    assert_eq!((cal.visual_mean, cal.visual_std), (2.0, 1.0));
    assert_eq!(cal.semantic_mean, 0.5);
    // Constant data: the std is floored, not zero.
    assert!(cal.semantic_std > 0.0 && cal.semantic_std <= 1e-6);
    assert_eq!(cal.semantic_weight, 0.2);

    // Round-trips through JSON.
    let json = serde_json::to_string(&cal).unwrap();
    assert_eq!(serde_json::from_str::<CausalCalibration>(&json).unwrap(), cal);
}

#[test]
fn fit_errors() {
    use ScoringError as E;
    assert_eq!(CausalCalibration::fit(&[], None, 5.0, 1.0, 0.0), Err(E::Empty { what: "visual" }));
    assert!(matches!(CausalCalibration::fit(&[1.0, f32::NAN], None, 5.0, 1.0, 0.0), Err(E::NonFinite { what: "visual", index: 1, .. })));
    assert!(matches!(CausalCalibration::fit(&[1.0, 2.0], Some(&[1.0, f32::INFINITY]), 5.0, 1.0, 0.5), Err(E::NonFinite { what: "semantic", index: 1, .. })));
    assert_eq!(CausalCalibration::fit(&[1.0, 2.0], Some(&[1.0]), 5.0, 1.0, 0.5), Err(E::LengthMismatch { visual: 2, semantic: 1 }));
    assert!(matches!(CausalCalibration::fit(&[1.0], None, f32::NAN, 1.0, 0.0), Err(E::BadParameter { name: "sigma", .. })));
    assert!(matches!(CausalCalibration::fit(&[1.0], None, 1.0, 0.0, 0.0), Err(E::BadParameter { .. })));
}

fn cal(sigma: f32) -> CausalCalibration {
    CausalCalibration {
        visual_mean: 1.0,
        visual_std: 2.0,
        semantic_mean: 0.5,
        semantic_std: 0.25,
        sigma,
        visual_weight: 0.8,
        semantic_weight: 0.2,
        pooling: ErrorPooling::FrameMean,
        regions: None,
        speed: None,
        visual_z_max: None,
        appearance: None,
    }
}

#[test]
fn causal_window_and_z_scores() {
    assert_eq!(CausalScorer::new(&cal(5.0)).window_len(), 16);
    assert_eq!(CausalScorer::new(&cal(0.5)).window_len(), 3);
    assert_eq!(CausalScorer::new(&cal(0.0)).window_len(), 1);
    // No smoothing: plain z-scores, weighted.
    let mut s = CausalScorer::new(&cal(0.0));
    assert_eq!(s.push(5.0, None), 2.0);
    assert!(close(f64::from(s.push(5.0, Some(1.0))), 0.8 * 2.0 + 0.2 * 2.0, 1e-6));
    assert_eq!(s.push(1.0, None), 0.0);
}

#[test]
fn causal_half_gaussian_weights() {
    let mut s = CausalScorer::new(&cal(1.0));
    // First frame: its own z-score.
    assert_eq!(s.push(3.0, None), 1.0);
    // Second: (z1 * 1 + z0 * e^-0.5) / (1 + e^-0.5).
    let w1 = (-0.5f64).exp();
    let got = f64::from(s.push(1.0, None));
    assert!(close(got, w1 / (1.0 + w1), 1e-6), "{got}");
    // After reset: the past is gone.
    s.reset();
    assert_eq!(s.push(1.0, None), 0.0);
    // A constant stream gives its z-score, whatever the history length.
    let mut s = CausalScorer::new(&cal(3.0));
    for _ in 0..40 {
        assert!(close(f64::from(s.push(7.0, None)), 3.0, 1e-6));
    }
}

#[test]
fn causal_never_uses_future_samples() {
    let c = cal(4.0);
    let visual: Vec<f32> = (0..60).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
    let semantic: Vec<f32> = (0..60).map(|i| ((i * 13) % 7) as f32 * 0.1).collect();
    let base = causal_scores(&visual, Some(&semantic), &c);
    for t in [0usize, 10, 30, 59] {
        let mut v2 = visual.clone();
        let mut s2 = semantic.clone();
        for i in t..60 {
            v2[i] += 100.0;
            s2[i] -= 3.0;
        }
        let changed = causal_scores(&v2, Some(&s2), &c);
        assert_eq!(&changed[..t], &base[..t], "changed input at {t} altered earlier outputs");
        assert_ne!(changed[t], base[t]);
    }
    // Unlike the offline (centred) smoothing, which does look ahead.
    let off = offline_scores(&visual, None, &OfflineScoring::default());
    let mut v2 = visual.clone();
    v2[59] += 100.0;
    assert_ne!(offline_scores(&v2, None, &OfflineScoring::default())[50], off[50]);
}

#[test]
fn causal_matches_streaming_and_forgets_after_window() {
    let c = cal(2.0);
    let visual: Vec<f32> = (0..30).map(|i| (i as f32 * 0.7).sin()).collect();
    let all = causal_scores(&visual, None, &c);
    // A spike influences at most window_len outputs.
    let len = CausalScorer::new(&c).window_len();
    let mut spiked = visual.clone();
    spiked[5] = 50.0;
    let s = causal_scores(&spiked, None, &c);
    for t in 5..5 + len {
        assert_ne!(s[t], all[t]);
    }
    assert_eq!(&s[5 + len..], &all[5 + len..]);
}

#[test]
fn causal_non_finite_inputs_do_not_poison() {
    let c = cal(2.0);
    let mut s = CausalScorer::new(&c);
    // Before any finite value: calibration mean (z = 0).
    assert_eq!(s.push(f32::NAN, None), 0.0);
    s.reset();
    let clean: Vec<f32> = [3.0, 4.0, 4.0, 5.0, 6.0, 7.0].iter().map(|&v| s.push(v, None)).collect();
    s.reset();
    // NaN at index 2 behaves like repeating the last valid value (4.0).
    let dirty: Vec<f32> = [3.0, 4.0, f32::NAN, 5.0, 6.0, 7.0].iter().map(|&v| s.push(v, None)).collect();
    assert_eq!(clean, dirty);
    assert_eq!(s.non_finite_count(), 2);
    assert!(dirty.iter().all(|v| v.is_finite()));
    // Infinite semantic value: also the last valid semantic one.
    s.reset();
    let a = [s.push(1.0, Some(0.7)), s.push(2.0, Some(0.7))];
    s.reset();
    let b = [s.push(1.0, Some(0.7)), s.push(2.0, Some(f32::INFINITY))];
    assert_eq!(a, b);
    assert_eq!(s.non_finite_count(), 3);
    // Huge finite values are clamped, the state stays finite and recovers.
    s.reset();
    s.push(f32::MAX, None);
    s.push(-f32::MAX, None);
    for _ in 0..s.window_len() {
        s.push(1.0, None);
    }
    assert_eq!(s.push(1.0, None), 0.0);
}

#[test]
fn causal_scorer_survives_invalid_calibration() {
    let bad = CausalCalibration {
        visual_mean: f32::NAN,
        visual_std: 0.0,
        semantic_mean: f32::INFINITY,
        semantic_std: -1.0,
        sigma: 1e30,
        visual_weight: f32::NAN,
        semantic_weight: 1.0,
        pooling: ErrorPooling::FrameMean,
        regions: None,
        speed: None,
        visual_z_max: None,
        appearance: None,
    };
    let mut s = CausalScorer::new(&bad);
    assert_eq!(s.window_len(), 3001);
    assert_eq!(s.push(2.0, Some(1.0)), 2.0);
}

#[test]
fn region_z_pooling_by_hand() {
    // 1 channel, 2x4 frame, 2x2 boxes at stride 2: boxes (0,0) and (0,2).
    let grid = box_grid(2, 4, 2, 2);
    assert_eq!(grid, [1, 2]);
    // Normal footage: box 0 always busy (mean 4, std 2), box 1 quiet (mean 0, std 0).
    let normal = [vec![2.0f32, 0.0], vec![6.0, 0.0]];
    let r = RegionStats::fit(2, 2, grid, normal.iter().map(Vec::as_slice)).unwrap();
    assert_eq!((r.mean.clone(), r.std.clone(), r.floor), (vec![4.0, 0.0], vec![2.0, 0.0], 1.0));
    // A frame with error 6 in the busy box and 2 in the quiet one: z = (6-4)/(2+1) = 0.667 vs
    // (2-0)/(0+1) = 2: the quiet region wins, which the plain window max would not see.
    let map = [6.0, 6.0, 2.0, 2.0, 6.0, 6.0, 2.0, 2.0];
    let z = ErrorPooling::WindowMaxZ { window: 2, stride: 2 };
    assert!((z.pool_map(&map, 2, 4, Some(&r)).unwrap() - 2.0).abs() < 1e-6);
    assert_eq!(ErrorPooling::WindowMax { window: 2, stride: 2 }.pool_map(&map, 2, 4, None).unwrap(), 6.0);
    // Without statistics, or with statistics of another geometry: an error that says so.
    let e = z.pool_map(&map, 2, 4, None).unwrap_err().to_string();
    assert!(e.contains("sfn-train calibrate"), "{e}");
    let e = ErrorPooling::WindowMaxZ { window: 2, stride: 1 }.pool_map(&map, 2, 4, Some(&r)).unwrap_err().to_string();
    assert!(e.contains("stride 2") && e.contains("window_max_z_2s1"), "{e}");
    // Fitting refuses frames of the wrong size and non-finite values, naming them.
    let e = RegionStats::fit(2, 2, grid, [&[1.0f32][..]]).unwrap_err().to_string();
    assert!(e.contains("frame 0 has 1 boxes"), "{e}");
    assert!(RegionStats::fit(2, 2, grid, [&[1.0f32, f32::NAN][..]]).is_err());
    assert!(RegionStats::fit(2, 2, grid, std::iter::empty::<&[f32]>()).is_err());
    // Statistics read from a file are validated once: NaN or a floor of 0 are refused.
    assert!(r.validate().is_ok());
    let mut bad = r.clone();
    bad.mean[1] = f32::NAN;
    assert!(bad.validate().unwrap_err().to_string().contains("non-finite"));
    bad = r.clone();
    bad.floor = 0.0;
    assert!(bad.validate().is_err());
    assert_eq!(r.box_scores(&[6.0, 2.0]).unwrap(), vec![2.0 / 3.0, 2.0]);
}

#[test]
fn pooling_names_parse_back() {
    for p in [
        ErrorPooling::FrameMean,
        ErrorPooling::WindowMax { window: 8, stride: 4 },
        ErrorPooling::WindowMaxZ { window: 16, stride: 8 },
        ErrorPooling::ChangedWindowMax { window: 32, stride: 16, change_milli: 100 },
        ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 3829, frames: 1 },
        ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 3829, frames: 2 },
        ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 0, frames: 3 },
    ] {
        assert_eq!(p.name().parse::<ErrorPooling>().unwrap(), p);
    }
    assert_eq!("relative_window_max_32s16_c100_f3829".parse::<ErrorPooling>().unwrap(), ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 3829, frames: 1 });
    assert_eq!("relative_window_max_32s16_c100_f3829_t2".parse::<ErrorPooling>().unwrap().frames(), 2);
    assert_eq!(ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 0, frames: 2 }.name(), "relative_window_max_32s16_c100_t2");
    // Without the floor: to be fitted by calibration.
    let unfitted = "relative_window_max_32s16_c100".parse::<ErrorPooling>().unwrap();
    assert_eq!(unfitted, ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 0, frames: 1 });
    assert_eq!(unfitted.name(), "relative_window_max_32s16_c100");
    assert_eq!("relative_window_max_32s16_c100_f3829".parse::<ErrorPooling>().unwrap().unfitted(), unfitted);
    assert_eq!("changed_window_max_32s16_c100".parse::<ErrorPooling>().unwrap(), ErrorPooling::ChangedWindowMax { window: 32, stride: 16, change_milli: 100 });
    for bad in [
        "",
        "window_max",
        "window_max_8",
        "window_max_0s4",
        "window_max_z_8sx",
        "mean",
        "changed_window_max_32s16",
        "changed_window_max_32s16_c0",
        "changed_window_max_0s16_c100",
        "changed_window_max_32s16_c99999",
        "relative_window_max_32s16_c100_f0",
        "relative_window_max_32s16_f3829",
        "relative_window_max_32s16_c100_fx",
        "relative_window_max_32s16_c100_f3829_t0",
        "relative_window_max_32s16_c100_f3829_t17",
    ] {
        let e = bad.parse::<ErrorPooling>().unwrap_err();
        assert!(e.contains("window_max_z_16s8") && e.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
}

/// The relative pooling by hand: per box the network's weighted error over copying's plus the floor,
/// the max of those; its map has two planes and one of the wrong size is refused, naming the sizes.
#[test]
fn the_relative_pooling_divides_by_copyings_error() {
    // 2x4 frame, boxes 2x2 at stride 2: the left box moved by 0.5 (full weight), the right one is still.
    let p = ErrorPooling::RelativeWindowMax { window: 2, stride: 2, change_milli: 100, floor_micro: 250_000, frames: 1 };
    let last = vec![0.0f32; 8];
    let target = vec![0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0];
    let pred = vec![0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5];
    let map = p.map(&pred, &target, &last, 1, 2, 4).unwrap();
    assert_eq!(map.len(), 16);
    // Left box: network error 0.25 per pixel, copying's 0.25: 0.25 / (0.25 + 0.25) = 0.5. Right box:
    // no change, so no weight: 0 / (0 + 0.25) = 0.
    assert_eq!(p.box_values(&map, 2, 4).unwrap(), vec![0.5, 0.0]);
    assert_eq!(p.pool_map(&map, 2, 4, None).unwrap(), 0.5);
    // The prediction that copies scores k / (k + f), below 1 however large copying's error.
    let copied = p.map(&last, &target, &last, 1, 2, 4).unwrap();
    assert_eq!(p.pool_map(&copied, 2, 4, None).unwrap(), 0.5);
    let e = p.pool_map(&map[..8], 2, 4, None).unwrap_err().to_string();
    assert!(e.contains("error map") && e.contains("8 values") && e.contains("2 plane(s) of 2x4"), "{e}");
    let e = p.box_values(&map[..15], 2, 4).unwrap_err().to_string();
    assert!(e.contains("15 values"), "{e}");
    assert_eq!(p.change_milli(), Some(100));
    assert_eq!(p.floor(), Some(0.25));
    let e = ErrorPooling::FrameMean.box_values(&map[..8], 2, 4).unwrap_err().to_string();
    assert!(e.contains("frame_mean"), "{e}");
}

/// The relative map's one-pass form is the two change-weighted maps it stands for, bit for bit, and
/// refuses a frame of the wrong size by name.
#[test]
fn the_relative_map_is_both_change_weighted_maps() {
    let (h, w) = (6, 7);
    let v = |k: usize, n: usize| -> Vec<f32> { (0..n).map(|i| (((i * 37 + k * 11) % 23) as f32 / 11.0 - 1.0) * 0.37).collect() };
    for c in [1usize, 3] {
        let n = c * h * w;
        let (pred, target, last) = (v(1, n), v(2, n), v(3, n));
        let mut want = changed_error_map(&pred, &target, &last, c, h, w, 100).unwrap();
        want.extend(changed_error_map(&last, &target, &last, c, h, w, 100).unwrap());
        assert_eq!(relative_error_map(&pred, &target, &last, c, h, w, 100).unwrap(), want, "{c} channel(s)");
    }
    let e = relative_error_map(&v(1, 41), &v(2, 42), &v(3, 42), 1, h, w, 100).unwrap_err().to_string();
    assert!(e.contains("pred") && e.contains("41 values"), "{e}");
    let e = relative_error_map(&v(1, 42), &v(2, 42), &v(3, 40), 1, h, w, 100).unwrap_err().to_string();
    assert!(e.contains("last") && e.contains("40 values"), "{e}");
}

/// The relative pooling's floor: fitted by calibration as the 90th percentile of copying's box errors
/// (linear between ranks), refused for scoring until fitted, kept where given; and calibration divides
/// the network's box means by copying's plus that floor.
#[test]
fn the_relative_floor_is_fitted_on_normal_footage() {
    // 0, 1e-6, ..., 10e-6: the 90th percentile of 11 values is the 10th of them, 9e-6.
    let copy: Vec<f32> = (0..=10).map(|i| i as f32 * 1e-6).collect();
    assert_eq!(fit_relative_floor(&copy).unwrap(), 9);
    // Between ranks: 0 and 100e-6 give 90e-6; an all-still footage gets the smallest floor, 1.
    assert_eq!(fit_relative_floor(&[0.0, 100e-6]).unwrap(), 90);
    assert_eq!(fit_relative_floor(&[0.0; 5]).unwrap(), 1);
    assert!(matches!(fit_relative_floor(&[]), Err(ScoringError::Empty { .. })));
    assert!(matches!(fit_relative_floor(&[1.0, f32::NAN]), Err(ScoringError::NonFinite { index: 1, .. })));
    // Unfitted, it scores nothing: the error says how to fit it.
    let unfitted = ErrorPooling::RelativeWindowMax { window: 2, stride: 2, change_milli: 100, floor_micro: 0, frames: 1 };
    let e = unfitted.box_values(&[0.0; 16], 2, 4).unwrap_err().to_string();
    assert!(e.contains("not fitted") && e.contains("calibrate"), "{e}");
    // Calibration: two boxes per frame, the network's means then copying's. Copying's box errors
    // are 0..=10 millionths over the frames, so the floor is 9 millionths.
    let errors: Vec<Vec<f32>> = (0..=10).map(|i| vec![2e-6, 1e-6, i as f32 * 1e-6, 10e-6 - i as f32 * 1e-6]).collect();
    let settings = CalibrationSettings { pooling: unfitted, sigma: 1.0, visual_weight: 1.0, semantic_weight: 0.0, speed: None };
    let cal = fit_calibration(settings, 2, 4, &errors, &[], None).unwrap();
    assert_eq!(cal.pooling, ErrorPooling::RelativeWindowMax { window: 2, stride: 2, change_milli: 100, floor_micro: 9, frames: 1 });
    // Frame i pools max(2 / (i + 9), 1 / (19 - i)) (in millionths): the z constants are those values'.
    let pooled: Vec<f32> = (0..=10).map(|i| (2e-6f32 / (i as f32 * 1e-6 + 9e-6)).max(1e-6 / (10e-6 - i as f32 * 1e-6 + 9e-6))).collect();
    let mean = pooled.iter().sum::<f32>() / 11.0;
    assert!((cal.visual_mean - mean).abs() < 1e-5, "{} vs {mean}", cal.visual_mean);
    // A given floor is kept; refitting settings clear it.
    let fixed = ErrorPooling::RelativeWindowMax { window: 2, stride: 2, change_milli: 100, floor_micro: 500, frames: 1 };
    assert_eq!(fit_calibration(CalibrationSettings { pooling: fixed, ..settings }, 2, 4, &errors, &[], None).unwrap().pooling, fixed);
    assert_eq!(CalibrationSettings::of(&cal).pooling, unfitted);
    // A summary that is not the two planes' box means is refused, naming the frame.
    let mut bad = errors.clone();
    bad[3].pop();
    let e = fit_calibration(settings, 2, 4, &bad, &[], None).unwrap_err().to_string();
    assert!(e.contains("frame 3") && e.contains("3 values"), "{e}");
}

/// A value that must hold over frames: the minimum over the last n of the clip (clipped at its start),
/// the same one at a time through a history, which forgets on clear; a non-finite value is passed on and
/// kept out of the minimum; and calibration takes the minimum within each clip, not across clips.
#[test]
fn persisted_values_hold_over_frames_within_a_clip() {
    let x = [1.0f32, 5.0, 4.0, 0.5, 3.0, 3.0];
    assert_eq!(persist(&x, 1), x.to_vec());
    assert_eq!(persist(&x, 2), vec![1.0, 1.0, 4.0, 0.5, 0.5, 3.0]);
    assert_eq!(persist(&x, 3), vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5]);
    let mut h = PooledHistory::new(2);
    assert_eq!(x.iter().map(|&v| h.push(v)).collect::<Vec<_>>(), persist(&x, 2));
    h.clear();
    assert_eq!(h.push(7.0), 7.0);
    let y = persist(&[2.0, f32::NAN, 3.0], 2);
    assert!(y[1].is_nan() && y[0] == 2.0 && y[2] == 2.0, "{y:?}");
    // Calibration: two clips of two frames, one box per plane; network means 4, 1 | 1, 4 over copying's 0.
    let errors: Vec<Vec<f32>> = [4e-6f32, 1e-6, 1e-6, 4e-6].iter().map(|&m| vec![m, 0.0]).collect();
    let pooling = ErrorPooling::RelativeWindowMax { window: 2, stride: 2, change_milli: 100, floor_micro: 1, frames: 2 };
    let settings = CalibrationSettings { pooling, sigma: 1.0, visual_weight: 1.0, semantic_weight: 0.0, speed: None };
    // Ratios 4, 1 | 1, 4 held over two frames within each clip: 4, 1 | 1, 1 (mean 1.75). As three
    // clips (2, 1, 1) the last frame starts its own clip and keeps its 4: 4, 1 | 1 | 4, mean 2.5.
    let per_clip = fit_calibration_joined(settings, 2, 2, &errors, &[2, 2], &[], None, None).unwrap();
    assert!((per_clip.visual_mean - 1.75).abs() < 1e-5, "{}", per_clip.visual_mean);
    let three = fit_calibration_joined(settings, 2, 2, &errors, &[2, 1, 1], &[], None, None).unwrap();
    assert!((three.visual_mean - 2.5).abs() < 1e-5, "{}", three.visual_mean);
    let e = fit_calibration_joined(settings, 2, 2, &errors, &[2, 1], &[], None, None).unwrap_err().to_string();
    assert!(e.contains("clip frames") && e.contains("3") && e.contains("4"), "{e}");
}

/// The change-weighted pooling reads frame t too: `pool_with` (prediction and target only) refuses it,
/// naming what is missing; through `map` a still frame weighs nothing and a changed one in full.
#[test]
fn the_changed_pooling_needs_the_last_frame() {
    let p = ErrorPooling::ChangedWindowMax { window: 2, stride: 2, change_milli: 100 };
    let (pred, target) = (vec![1.0f32; 8], vec![0.0f32; 8]);
    let e = p.pool_with(&pred, &target, 1, 2, 4, None).unwrap_err().to_string();
    assert!(e.contains("last") && e.contains("changed_window_max_2s2_c100"), "{e}");
    assert_eq!(p.pool_map(&p.map(&pred, &target, &target, 1, 2, 4).unwrap(), 2, 4, None).unwrap(), 0.0);
    let moved: Vec<f32> = target.iter().map(|t| t + 0.5).collect();
    assert_eq!(p.pool_map(&p.map(&pred, &target, &moved, 1, 2, 4).unwrap(), 2, 4, None).unwrap(), 1.0);
}

#[test]
fn window_means_match_the_window_max_pooling() {
    let (h, w) = (7, 10);
    let map: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
    for (win, stride) in [(3, 2), (4, 4), (8, 3), (1, 1)] {
        let means = window_means(&map, h, w, win, stride);
        let g = box_grid(h, w, win, stride);
        assert_eq!(means.len(), g[0] * g[1]);
        let max = means.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(ErrorPooling::WindowMax { window: win, stride }.pool_map(&map, h, w, None).unwrap(), max);
    }
}

#[test]
fn frame_z_reports_the_unsmoothed_components() {
    let cal = CausalCalibration { semantic_mean: 0.5, semantic_std: 0.25, semantic_weight: 0.2, visual_weight: 0.8, ..CausalCalibration::fit(&[1.0, 3.0], None, 3.0, 1.0, 0.0).unwrap() };
    let s = CausalScorer::new(&cal);
    assert_eq!(s.frame_z(4.0, None), (2.0, None));
    assert_eq!(s.frame_z(2.0, Some(1.0)), (0.0, Some(2.0)));
    assert!(s.frame_z(f32::NAN, None).0.is_nan());
}
