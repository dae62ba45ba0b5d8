//! Times training steps of a preset on random data: `cargo run --release -p sfn-lab --example step_time -- PRESET BATCH STEPS`.
use candle_core::{Device, Tensor};
use sfn_models::{losses, SfnConfig, SfnVad};
use sfn_trainer::optim::{Adam, AdamConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("cpu-ped2");
    let cfg: SfnConfig = if name.ends_with(".json") { serde_json::from_str(&std::fs::read_to_string(name)?)? } else { SfnConfig::preset(name)? };
    let b: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let steps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let dev = Device::Cpu;
    let (m, vm) = SfnVad::init(&cfg, &dev)?;
    let vars = vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut opt = Adam::new(vars, AdamConfig::default())?;
    let i = &cfg.image;
    let x = Tensor::randn(0f32, 0.5, (b, 4, i.channels, i.height, i.width), &dev)?;
    let y = Tensor::randn(0f32, 0.5, (b, i.channels, i.height, i.width), &dev)?;
    let last = x.narrow(1, 3, 1)?.squeeze(1)?;
    for s in 0..steps {
        let t0 = std::time::Instant::now();
        let out = m.forward(&x, None)?;
        let l = losses::total_loss(&out, &y, &last, None, &cfg.loss)?;
        let t1 = t0.elapsed();
        let grads = l.total.backward()?;
        let tb = t0.elapsed();
        opt.step_with(&grads)?;
        let t2 = t0.elapsed();
        println!("  backward {:.3}s adam {:.3}s", (tb - t1).as_secs_f64(), (t2 - tb).as_secs_f64());
        println!("step {s}: fwd {:.3}s total {:.3}s -> {:.1} samples/s", t1.as_secs_f64(), t2.as_secs_f64(), b as f64 / t2.as_secs_f64());
    }
    Ok(())
}
