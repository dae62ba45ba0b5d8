//! Training losses: frame MSE, text 1-cos, motion frame-difference hinge, expert balance.

use candle_core::{Result, Tensor, D};

use crate::config::LossConfig;
use crate::mjad::DecoderOutput;
use crate::scoring::{ErrorPooling, RegionStats};

/// L_frame = mean((I_hat - I_{t+1})^2).
pub fn frame_mse(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    (pred - target)?.sqr()?.mean_all()
}

/// L_frame = mean((1 + moving * min(1, m / 0.1)) (I_hat - I)^2), m the channel mean of |I_{t+1} - I_t|:
/// the MSE with the pixels that change weighted up, by the change map of the scoring's
/// `changed_window_max_..._c100`.
pub fn moving_weighted_mse(pred: &Tensor, target: &Tensor, last: &Tensor, moving: f64) -> Result<Tensor> {
    let scale = f64::from(crate::scoring::change_scale(100));
    let weight = (((target - last)?.abs()?.mean_keepdim(1)? * scale)?.minimum(1f32)? * moving)? + 1.0;
    (pred - target)?.sqr()?.broadcast_mul(&weight?)?.mean_all()
}

/// L_gd = mean | |I_hat_x| - |I_x| | + mean | |I_hat_y| - |I_y| |, I_x and I_y the differences of
/// horizontally and vertically adjacent pixels (FFP's gradient loss; [B, C, H, W] frames).
pub fn gradient_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = pred.dims4()?;
    let grad = |x: &Tensor, dim: usize, n: usize| -> Result<Tensor> { (x.narrow(dim, 1, n - 1)? - x.narrow(dim, 0, n - 1)?)?.abs() };
    let gx = (grad(pred, 3, w)? - grad(target, 3, w)?)?.abs()?.mean_all()?;
    let gy = (grad(pred, 2, h)? - grad(target, 2, h)?)?.abs()?.mean_all()?;
    gx + gy
}

/// Squared-error map averaged over channels: [B, 1, H, W].
pub fn error_map(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    (pred - target)?.sqr()?.mean_keepdim(1)
}

/// [`error_map`] weighted by how much the frame changed from `last` (frame t): each pixel's error
/// times min(1, m * [`crate::scoring::change_scale`]), m the channel mean of |I_{t+1} - I_t|: [B, 1, H, W].
pub fn changed_error_map(pred: &Tensor, target: &Tensor, last: &Tensor, change_milli: u16) -> Result<Tensor> {
    let scale = f64::from(crate::scoring::change_scale(change_milli));
    let weight = ((target - last)?.abs()?.mean_keepdim(1)? * scale)?.minimum(1f32)?;
    error_map(pred, target)? * weight
}

/// The map of [`ErrorPooling::RelativeWindowMax`]: [`changed_error_map`] of the prediction and of
/// copying (`last` as the prediction), stacked: [B, 2, H, W].
pub fn relative_error_map(pred: &Tensor, target: &Tensor, last: &Tensor, change_milli: u16) -> Result<Tensor> {
    Tensor::cat(&[changed_error_map(pred, target, last, change_milli)?, changed_error_map(last, target, last, change_milli)?], 1)
}

/// Visual error per sample from an error map [B, P, H, W] (P = `pooling.planes()`), pooled as
/// `pooling` says: [B] ([`ErrorPooling::ChangedWindowMax`] pools the map of [`changed_error_map`],
/// [`ErrorPooling::RelativeWindowMax`] that map and copying's, see [`relative_error_map`]).
/// [`ErrorPooling::WindowMaxZ`] needs its region statistics: see [`pooled_error_with`].
pub fn pooled_error(map: &Tensor, pooling: ErrorPooling) -> Result<Tensor> {
    pooled_error_with(map, pooling, None)
}

/// Box means of a window pooling, e_w = mean over box w of the map: [B, boxes] (row-major boxes,
/// the geometry of `sfn_scoring::box_grid`).
pub fn window_means(map: &Tensor, window: usize, stride: usize) -> Result<Tensor> {
    let (b, h, w) = (map.dim(0)?, map.dim(2)?, map.dim(3)?);
    let k = (window.clamp(1, h), window.clamp(1, w));
    map.avg_pool2d_with_stride(k, (stride.max(1), stride.max(1)))?.reshape((b, ()))
}

/// [`pooled_error`] with the per-region statistics of normal footage for `WindowMaxZ`:
/// e = max_w (e_w - mu_w) / (sd_w + floor).
pub fn pooled_error_with(map: &Tensor, pooling: ErrorPooling, regions: Option<&RegionStats>) -> Result<Tensor> {
    let b = map.dim(0)?;
    match pooling {
        ErrorPooling::FrameMean => map.reshape((b, ()))?.mean(1),
        ErrorPooling::WindowMax { window, stride } | ErrorPooling::ChangedWindowMax { window, stride, .. } => window_means(map, window, stride)?.max(1),
        ErrorPooling::RelativeWindowMax { window, stride, .. } => {
            pooling.check_fitted().map_err(candle_core::Error::wrap)?;
            let f = f64::from(pooling.floor().unwrap_or_default());
            let m = window_means(&map.narrow(1, 0, 1)?, window, stride)?;
            let k = window_means(&map.narrow(1, 1, 1)?, window, stride)?;
            (m / (k + f)?)?.max(1)
        }
        ErrorPooling::WindowMaxZ { window, stride } => {
            let r = pooling.check_regions(regions, map.dim(2)?, map.dim(3)?).map_err(candle_core::Error::wrap)?;
            let means = window_means(map, window, stride)?.to_vec2::<f32>()?;
            let v = means.iter().map(|m| r.pool(m)).collect::<std::result::Result<Vec<f32>, _>>().map_err(candle_core::Error::wrap)?;
            Tensor::from_vec(v, b, map.device())
        }
    }
}

/// L_motion = mean(max(0, (I_hat - I_{t+1})^2 - (I_hat - I_t)^2)): a prediction closer to the previous
/// frame than to the true next frame is penalised, pixel by pixel.
pub fn motion_hinge(pred: &Tensor, target: &Tensor, last: &Tensor) -> Result<Tensor> {
    let to_next = (pred - target)?.sqr()?;
    let to_last = (pred - last)?.sqr()?;
    (to_next - to_last)?.relu()?.mean_all()
}

/// L_text = mean_b (1 - cos(t_hat_b, t_b)).
pub fn text_cosine(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    (1.0 - per_sample_cosine(pred, target)?)?.mean_all()
}

/// cos(a_b, t_b) per row: [B].
pub fn per_sample_cosine(a: &Tensor, t: &Tensor) -> Result<Tensor> {
    let dot = (a * t)?.sum(D::Minus1)?;
    let na = a.sqr()?.sum(D::Minus1)?.sqrt()?;
    let nt = t.sqr()?.sum(D::Minus1)?.sqrt()?;
    dot / ((na * nt)? + 1e-8)?
}

/// All loss terms of one batch.
#[derive(Clone, Debug)]
pub struct Losses {
    pub total: Tensor,
    pub frame: Tensor,
    pub motion: Tensor,
    /// None while there are no captions.
    pub text: Option<Tensor>,
    pub balance: Tensor,
}

/// L = w_f L_frame + w_t L_text + w_m L_motion + w_b sum_layers L_balance.
pub fn total_loss(out: &DecoderOutput, target: &Tensor, last: &Tensor, text_target: Option<&Tensor>, w: &LossConfig) -> Result<Losses> {
    let mut frame = if w.moving > 0.0 { moving_weighted_mse(&out.frame, target, last, w.moving)? } else { frame_mse(&out.frame, target)? };
    if w.gradient > 0.0 {
        frame = (frame + (gradient_loss(&out.frame, target)? * w.gradient)?)?;
    }
    let motion = motion_hinge(&out.frame, target, last)?;
    let mut balance = Tensor::zeros((), candle_core::DType::F32, target.device())?;
    for r in &out.routing {
        balance = (balance + &r.balance_loss)?;
    }
    let mut total = ((&frame * w.frame)? + (&motion * w.motion)?)?;
    total = (total + (&balance * w.balance)?)?;
    let text = match text_target {
        Some(t) => {
            let l = text_cosine(&out.text, t)?;
            total = (total + (&l * w.text)?)?;
            Some(l)
        }
        None => None,
    };
    Ok(Losses { total, frame, motion, text, balance })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn moving_weighted_mse_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        // [B 1, C 1, H 1, W 4]: pixel changes 0, 0.05, 0.1, 0.5 -> weights 1, 1 + 0.5 m, 1 + m, 1 + m.
        let last = Tensor::new(&[0f32, 0.0, 0.0, 0.0], &dev)?.reshape((1, 1, 1, 4))?;
        let target = Tensor::new(&[0f32, 0.05, 0.1, 0.5], &dev)?.reshape((1, 1, 1, 4))?;
        let pred = (&target + 1.0)?;
        let got = moving_weighted_mse(&pred, &target, &last, 4.0)?.to_scalar::<f32>()?;
        assert!((got - (1.0 + 3.0 + 5.0 + 5.0) / 4.0).abs() < 1e-5, "{got}");
        // Weight 0 is the plain MSE.
        assert!((moving_weighted_mse(&pred, &target, &last, 0.0)?.to_scalar::<f32>()? - 1.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn gradient_loss_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        // [1, 1, 2, 2]: target [[0, 1], [1, 1]] has |I_x| = [1, 0], |I_y| = [1, 0]; pred [[0, 0], [0, 0]]
        // has none: 0.5 + 0.5. A shifted frame (pred = target + 3) has the same gradients: 0.
        let target = Tensor::new(&[0f32, 1.0, 1.0, 1.0], &dev)?.reshape((1, 1, 2, 2))?;
        let pred = target.zeros_like()?;
        assert!((gradient_loss(&pred, &target)?.to_scalar::<f32>()? - 1.0).abs() < 1e-6);
        assert!(gradient_loss(&(&target + 3.0)?, &target)?.to_scalar::<f32>()?.abs() < 1e-6);
        // Only the magnitudes count: the mirrored edge [[1, 0], [0, 0]] against [[0, 1], [1, 1]] gives
        // |I_x| = [1, 0] and |I_y| = [1, 0] for both.
        let mirrored = Tensor::new(&[1f32, 0.0, 0.0, 0.0], &dev)?.reshape((1, 1, 2, 2))?;
        assert!(gradient_loss(&mirrored, &target)?.to_scalar::<f32>()?.abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn motion_hinge_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        // 4 pixels. pred, next, last chosen so that per-pixel terms are:
        // p0: (1-0)^2 - (1-1)^2 = 1 ; p1: (0-0)^2 - (0-1)^2 = -1 -> 0 ;
        // p2: (2-1)^2 - (2-0)^2 = -3 -> 0 ; p3: (0.5-1.5)^2 - (0.5-0.5)^2 = 1
        let pred = Tensor::new(&[1f32, 0.0, 2.0, 0.5], &dev)?;
        let next = Tensor::new(&[0f32, 0.0, 1.0, 1.5], &dev)?;
        let last = Tensor::new(&[1f32, 1.0, 0.0, 0.5], &dev)?;
        let v = motion_hinge(&pred, &next, &last)?.to_scalar::<f32>()?;
        assert!((v - 0.5).abs() < 1e-7, "{v}");
        Ok(())
    }

    #[test]
    fn cosine_loss_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[1f32, 0.0], [1.0, 1.0]], &dev)?;
        let t = Tensor::new(&[[0f32, 2.0], [2.0, 2.0]], &dev)?;
        // rows: cos = 0 -> 1 ; cos = 1 -> 0 ; mean 0.5
        let v = text_cosine(&a, &t)?.to_scalar::<f32>()?;
        assert!((v - 0.5).abs() < 1e-6, "{v}");
        Ok(())
    }

    #[test]
    fn window_max_pooling_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        // 4x4 map, zero except a 2x2 block of 4.0 at the bottom right.
        let mut v = vec![0f32; 16];
        for (r, c) in [(2, 2), (2, 3), (3, 2), (3, 3)] {
            v[r * 4 + c] = 4.0;
        }
        let map = Tensor::from_vec(v, (1, 1, 4, 4), &dev)?;
        let mean: Vec<f32> = pooled_error(&map, ErrorPooling::FrameMean)?.to_vec1()?;
        assert_eq!(mean, vec![1.0]);
        let local: Vec<f32> = pooled_error(&map, ErrorPooling::WindowMax { window: 2, stride: 1 })?.to_vec1()?;
        assert_eq!(local, vec![4.0]);
        // stride 3 only sees boxes at (0,0): all zero.
        let coarse: Vec<f32> = pooled_error(&map, ErrorPooling::WindowMax { window: 2, stride: 3 })?.to_vec1()?;
        assert_eq!(coarse, vec![0.0]);
        Ok(())
    }

    /// The candle pooling (training, eval) and the camera's pure-Rust pooling (`sfn-scoring`) agree on
    /// every pooling, box geometry and region statistics: one definition, two implementations kept equal.
    #[test]
    fn candle_pooling_equals_the_cameras() -> Result<()> {
        let dev = Device::Cpu;
        let (h, w) = (24, 36);
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let maps: Vec<Vec<f32>> = (0..3).map(|_| (0..h * w).map(|_| next() * next() * 0.1).collect()).collect();
        let t = Tensor::from_vec(maps.concat(), (3, 1, h, w), &dev)?;
        for (window, stride) in [(8, 4), (12, 6), (5, 3)] {
            let grid = crate::scoring::box_grid(h, w, window, stride);
            let normal: Vec<Vec<f32>> = maps.iter().map(|m| crate::scoring::window_means(m, h, w, window, stride)).collect();
            let regions = RegionStats::fit(window, stride, grid, normal.iter().map(Vec::as_slice)).unwrap();
            for pooling in [ErrorPooling::FrameMean, ErrorPooling::WindowMax { window, stride }, ErrorPooling::WindowMaxZ { window, stride }] {
                let r = matches!(pooling, ErrorPooling::WindowMaxZ { .. }).then_some(&regions);
                let candle: Vec<f32> = pooled_error_with(&t, pooling, r)?.to_vec1()?;
                for (m, c) in maps.iter().zip(&candle) {
                    let rust = pooling.pool_map(m, h, w, r).unwrap();
                    assert!((rust - c).abs() <= 1e-5 * rust.abs().max(1.0), "{pooling:?}: camera {rust} vs candle {c}");
                }
            }
        }
        Ok(())
    }

    /// The change-weighted map: candle's (training, eval) equals the camera's bit for bit on one channel
    /// (within float rounding on three), pixels that do not change weigh 0, pixels that change by c
    /// or more keep their whole error, those between are weighted in proportion, and its pooling agrees.
    #[test]
    fn changed_error_map_equals_the_cameras() -> Result<()> {
        let dev = Device::Cpu;
        let (h, w) = (16, 20);
        let mut state = 777u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        for c in [1usize, 3] {
            let n = c * h * w;
            let (pred, target): (Vec<f32>, Vec<f32>) = ((0..n).map(|_| next()).collect(), (0..n).map(|_| next()).collect());
            // A third of the pixels do not change, a third change by 0.5 (over c = 0.1), a third by 0.05.
            let step = |i: usize| [0.0f32, 0.5, 0.05][(i % (h * w)) % 3];
            let last: Vec<f32> = target.iter().enumerate().map(|(i, t)| t - step(i)).collect();
            let tt = |v: &Vec<f32>| Tensor::from_vec(v.clone(), (1, c, h, w), &dev);
            let candle: Vec<f32> = changed_error_map(&tt(&pred)?, &tt(&target)?, &tt(&last)?, 100)?.flatten_all()?.to_vec1()?;
            let camera = crate::scoring::changed_error_map(&pred, &target, &last, c, h, w, 100).unwrap();
            let full = crate::scoring::error_map(&pred, &target, c, h, w).unwrap();
            if c == 1 {
                assert_eq!(candle, camera, "one channel");
            }
            for (i, ((m, e), k)) in camera.iter().zip(&full).zip(&candle).enumerate() {
                assert!((m - k).abs() <= 1e-6 * e.max(1e-6), "pixel {i}: camera {m} vs candle {k}");
                // The step is rounded in (t - step) - t: compare the weight within float rounding.
                let want = e * [0.0f32, 1.0, 0.5][i % 3];
                assert!((m - want).abs() <= 1e-4 * e.max(1e-6), "pixel {i}: {m} vs {want}");
            }
            let pooling = ErrorPooling::ChangedWindowMax { window: 8, stride: 4, change_milli: 100 };
            let map = Tensor::from_vec(camera.clone(), (1, 1, h, w), &dev)?;
            let pooled: Vec<f32> = pooled_error(&map, pooling)?.to_vec1()?;
            let rust = pooling.pool_map(&pooling.map(&pred, &target, &last, c, h, w).unwrap(), h, w, None).unwrap();
            assert!((pooled[0] - rust).abs() <= 1e-6 * rust.abs().max(1.0), "{} vs {rust}", pooled[0]);
            assert_eq!(pooling.name().parse::<ErrorPooling>().unwrap(), pooling);
            // Relative to copying: candle's two-plane map and pooling agree with the camera's.
            let relative = ErrorPooling::RelativeWindowMax { window: 8, stride: 4, change_milli: 100, floor_micro: 3829, frames: 1 };
            let camera_map = relative.map(&pred, &target, &last, c, h, w).unwrap();
            let candle_map = relative_error_map(&tt(&pred)?, &tt(&target)?, &tt(&last)?, 100)?;
            assert_eq!(candle_map.dims4()?, (1, 2, h, w));
            for (i, (m, k)) in camera_map.iter().zip(candle_map.flatten_all()?.to_vec1::<f32>()?).enumerate() {
                assert!((m - k).abs() <= 1e-6 * m.abs().max(1e-6), "relative map value {i}: camera {m} vs candle {k}");
            }
            let pooled: Vec<f32> = pooled_error(&candle_map, relative)?.to_vec1()?;
            let rust = relative.pool_map(&camera_map, h, w, None).unwrap();
            assert!(rust > 0.0 && (pooled[0] - rust).abs() <= 1e-5 * rust.abs().max(1.0), "relative: candle {} vs camera {rust}", pooled[0]);
        }
        Ok(())
    }

    #[test]
    fn frame_mean_error_hand_case() -> Result<()> {
        let dev = Device::Cpu;
        let p = Tensor::new(&[[[[1f32, 2.0]]], [[[0.0, 0.0]]]], &dev)?;
        let t = Tensor::new(&[[[[0f32, 0.0]]], [[[0.0, 4.0]]]], &dev)?;
        let v: Vec<f32> = pooled_error(&error_map(&p, &t)?, ErrorPooling::FrameMean)?.to_vec1()?;
        assert_eq!(v, vec![2.5, 8.0]);
        Ok(())
    }
}
