//! Per-frame measurements of the motion describer on a labelled test split, as TSV on stdout
//! (clip, frame, label, regions, max speed px/frame, area of the fastest, max area):
//! `cargo run --release -p sfn-lab --example describer_stats -- ROOT [HxW]`.
use sfn_captions::describe::MotionDescriber;
use sfn_captions::Clip;
use sfn_trainer::data::{load_labels, Dataset, FrameFormat};

#[allow(clippy::needless_range_loop)] // t indexes frames and labels alike
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("../shared/data/ped2"));
    let (h, w) = args.get(2).and_then(|s| s.split_once('x')).map(|(h, w)| (h.parse().unwrap(), w.parse().unwrap())).unwrap_or((120, 180));
    let fmt = FrameFormat { height: h, width: w, channels: 1 };
    let ds = Dataset::open(&root, "testing", &fmt)?;
    let labels = load_labels(&root)?;
    let d = MotionDescriber::default();
    for clip in &ds.clips {
        for t in 3..clip.frames.len() {
            let c = Clip { clip: &clip.name, frame: t, frames: [&clip.frames[t - 3], &clip.frames[t - 2], &clip.frames[t - 1], &clip.frames[t]], channels: 1, height: h, width: w };
            let r = d.measure(&c)?;
            let vmax = r.first().map_or(0.0, |r| r.speed() * w as f32);
            let afast = r.first().map_or(0.0, |r| r.area);
            let amax = r.iter().map(|r| r.area).fold(0f32, f32::max);
            println!("{}\t{t}\t{}\t{}\t{vmax:.3}\t{afast:.5}\t{amax:.5}", clip.name, labels[&clip.name][t], r.len());
        }
    }
    Ok(())
}
