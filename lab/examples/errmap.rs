//! Debug view: `errmap MODEL_DIR DATA_ROOT CLIP_INDEX FRAME OUT_PREFIX` writes target / prediction /
//! error PNGs for one window of the test split.
use std::path::Path;

use sfn_models::losses;
use sfn_trainer::{checkpoint, data::Dataset, train};

fn save(t: &candle_core::Tensor, path: &str, scale: f32, offset: f32) -> anyhow::Result<()> {
    let (h, w) = (t.dim(0)?, t.dim(1)?);
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    let px: Vec<u8> = v.iter().map(|x| ((x * scale + offset) * 255.0).clamp(0.0, 255.0) as u8).collect();
    let img = image::GrayImage::from_raw(w as u32, h as u32, px).ok_or_else(|| anyhow::anyhow!("size"))?;
    let img = image::imageops::resize(&img, w as u32 * 4, h as u32 * 4, image::imageops::FilterType::Nearest);
    img.save(path)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let m = checkpoint::load_model(Path::new(&a[1]))?;
    let ds = Dataset::open(Path::new(&a[2]), "testing", &train::frame_format(&m.cfg))?;
    let c: usize = a[3].parse()?;
    let t: usize = a[4].parse()?;
    let x = train::batch_tensor(&ds, &[(c, t)])?;
    let pred = m.model.forward(&x.narrow(1, 0, 4)?, None)?.frame;
    let target = x.narrow(1, 4, 1)?.squeeze(1)?;
    let map = losses::error_map(&pred, &target)?;
    let mx = map.max_all()?.to_scalar::<f32>()?;
    println!("max err {mx}, mean err {}", map.mean_all()?.to_scalar::<f32>()?);
    save(&target.get(0)?.get(0)?, &format!("{}_target.png", a[5]), 0.5, 0.5)?;
    save(&pred.get(0)?.get(0)?, &format!("{}_pred.png", a[5]), 0.5, 0.5)?;
    save(&map.get(0)?.get(0)?, &format!("{}_err.png", a[5]), 1.0 / mx, 0.0)?;
    Ok(())
}
