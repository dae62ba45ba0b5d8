//! Where tract spends a call of the batch-1 plan: time per operator kind and the slowest nodes, summed
//! over ROUNDS calls on deterministic inputs (the text mask 0, as a camera without captions runs).
//!
//! ```text
//! cargo run --release -p sfn-infer --example tract_profile -- [ONNX_FILE] [ROUNDS]
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use sfn_infer::tract::TractRunner;
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx/decoder.onnx"));
    let rounds: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(30);
    let r = TractRunner::open(&path)?;
    let plan = r.plan();
    let inputs: TVec<TValue> = r.sample_inputs(1).into_iter().map(|(_, s, v)| Tensor::from_shape(&s, &v).map(|t| t.into_tvalue())).collect::<TractResult<_>>()?;
    let mut by_op: HashMap<String, (f64, usize)> = HashMap::new();
    let mut by_node: HashMap<String, f64> = HashMap::new();
    let t0 = Instant::now();
    for _ in 0..rounds {
        let mut state = tract_onnx::tract_core::plan::SimpleState::new(&plan)?;
        state.run_plan_with_eval(inputs.clone(), |ctx, st, node, input| {
            let t = Instant::now();
            let out = tract_onnx::tract_core::plan::eval(ctx, st, node, input);
            let dt = t.elapsed().as_secs_f64();
            let e = by_op.entry(node.op().name().to_string()).or_default();
            e.0 += dt;
            e.1 += 1;
            *by_node.entry(format!("{} ({})", node.name, node.op().name())).or_default() += dt;
            out
        })?;
    }
    let total = t0.elapsed().as_secs_f64();
    let per = |x: f64| 1e3 * x / rounds as f64;
    println!("{}: {:.2} ms a call ({} nodes in the plan)\n", path.display(), per(total), plan.model().nodes().len());
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!("| operator | ms a call | share | nodes |");
    println!("|---|---:|---:|---:|");
    for (op, (t, n)) in ops.iter().take(15) {
        println!("| {op} | {:.3} | {:.1}% | {} |", per(*t), 100.0 * t / total, n / rounds);
    }
    let mut nodes: Vec<_> = by_node.into_iter().collect();
    nodes.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\n| slowest nodes | ms a call |\n|---|---:|");
    for (n, t) in nodes.iter().take(15) {
        println!("| {n} | {:.3} |", per(*t));
    }
    Ok(())
}
