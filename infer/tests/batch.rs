//! The batcher on the committed export's graphs (tract): calls of several threads that are ready
//! together run as one batch and each thread gets its own rows (as its batch-1 call would, up to
//! float rounding); a handle that never calls costs the others one deadline, not one per round; a
//! caller's bad input fails its own call only.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use sfn_infer::batch::{BatchOptions, BatchedRunner};
use sfn_infer::tract::TractRunner;
use sfn_infer::{Array, Runner};

type Inputs = Vec<(String, Vec<usize>, Vec<f32>)>;

fn graph(name: &str) -> TractRunner {
    TractRunner::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx").join(name)).unwrap()
}

fn refs(d: &Inputs) -> Vec<(&str, &[usize], &[f32])> {
    d.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect()
}

/// The sample inputs made different per caller `k` (each value shifted and wrapped into [0, 1)).
fn inputs_for(r: &TractRunner, k: usize) -> Inputs {
    r.sample_inputs(1).into_iter().map(|(n, s, v)| (n, s, v.into_iter().map(|x| (x + 0.17 * k as f32).fract()).collect())).collect()
}

fn rel(a: &Array, b: &Array) -> f32 {
    assert_eq!(a.shape, b.shape);
    let scale = a.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.data.iter().zip(&b.data).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// Each handle on its own thread calls with its inputs `rounds` times, all threads starting each
/// round together; every call's outputs, per handle.
fn call_together(handles: Vec<Box<dyn Runner>>, inputs: Vec<Inputs>, rounds: usize) -> Vec<Vec<Vec<Array>>> {
    let barrier = Arc::new(Barrier::new(handles.len()));
    let threads: Vec<_> = handles
        .into_iter()
        .zip(inputs)
        .map(|(mut h, inputs)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                (0..rounds)
                    .map(|_| {
                        barrier.wait();
                        h.run(&refs(&inputs)).unwrap()
                    })
                    .collect()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn ready_calls_run_as_one_batch_and_each_caller_gets_its_rows() {
    for name in ["encoder.onnx", "decoder.onnx"] {
        let mut direct = graph(name);
        let expected: Vec<Vec<Array>> = (0..3).map(|k| direct.run(&refs(&inputs_for(&direct, k))).unwrap()).collect();
        let first = BatchedRunner::spawn(Box::new(graph(name)), BatchOptions { max_batch: 8, deadline: Duration::from_secs(30) }).unwrap();
        let stats = first.stats();
        let handles: Vec<Box<dyn Runner>> = (0..3).map(|_| first.share().unwrap()).collect();
        drop(first);
        let rounds = 4;
        let outs = call_together(handles, (0..3).map(|k| inputs_for(&direct, k)).collect(), rounds as usize);
        for (k, per_round) in outs.into_iter().enumerate() {
            for out in per_round {
                assert_eq!(out.len(), expected[k].len());
                for (a, b) in out.iter().zip(&expected[k]) {
                    assert!(rel(b, a) < 1e-5, "{name}, caller {k}: {}", rel(b, a));
                }
            }
        }
        let (calls, runs, misses, largest) = stats.snapshot();
        assert_eq!(calls, 3 * rounds, "{name}");
        // Every handle active and calling each round: one batch of three per round, no deadline hit.
        assert_eq!((runs, misses, largest), (rounds, 0, 3), "{name}");
    }
}

#[test]
fn a_handle_that_never_calls_costs_one_deadline() {
    let r = graph("encoder.onnx");
    let first = BatchedRunner::spawn(Box::new(graph("encoder.onnx")), BatchOptions { max_batch: 8, deadline: Duration::from_secs(1) }).unwrap();
    let stats = first.stats();
    let live: Vec<Box<dyn Runner>> = (0..2).map(|_| first.share().unwrap()).collect();
    let _dead = first.share().unwrap();
    drop(first);
    let rounds = 6;
    call_together(live, (0..2).map(|k| inputs_for(&r, k)).collect(), rounds as usize);
    let (calls, _, misses, largest) = stats.snapshot();
    assert_eq!(calls, 2 * rounds);
    // The silent handle is waited for once; after that rounds run with the two that call.
    assert_eq!(misses, 1, "rounds that waited for the silent handle");
    assert_eq!(largest, 2);
}

#[test]
fn a_bad_input_fails_its_own_call_only() {
    let r = graph("encoder.onnx");
    let first = BatchedRunner::spawn(Box::new(graph("encoder.onnx")), BatchOptions { max_batch: 8, deadline: Duration::from_secs(30) }).unwrap();
    let (mut good, mut bad) = (first.share().unwrap(), first.share().unwrap());
    drop(first);
    let good_in = inputs_for(&r, 0);
    // The same inputs with one value too few per frame: a layout of its own, refused by the graph.
    let bad_in: Inputs = good_in.iter().map(|(n, s, v)| (n.clone(), s.iter().map(|&d| if d == 160 { 159 } else { d }).collect(), v[..v.len() * 159 / 160].to_vec())).collect();
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    let t = std::thread::spawn(move || {
        b2.wait();
        bad.run(&refs(&bad_in))
    });
    barrier.wait();
    let ok = good.run(&refs(&good_in));
    let err = t.join().unwrap();
    assert!(ok.is_ok(), "{:?}", ok.err());
    let err = err.expect_err("a frame of the wrong size must fail");
    assert!(err.to_string().contains("encoder.onnx"), "the error names the graph: {err}");
}
