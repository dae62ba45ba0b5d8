//! sfn-text against an independent numpy implementation of all-MiniLM-L6-v2 (`tests/reference.py`, run
//! in the repo venv made by `scripts/setup.sh`): embeddings and cosine similarities agree to 1e-4, with
//! the Rust side batched (padding + attention mask) and the reference one sentence at a time.

use std::path::Path;
use std::process::Command;

use sfn_text::{cosine, default_dir, SentenceEncoder};

const SENTENCES: [&str; 6] = [
    "Two people walk slowly along the walkway.",
    "A person is walking on the sidewalk.",
    "A cyclist rides fast through the crowd of pedestrians.",
    "a small cart moves quickly to the right near the bottom of the scene",
    "The parking lot is empty.",
    "Pedestrians stroll; one person on a skateboard glides past, much faster than everyone else!",
];

#[test]
fn matches_numpy_reference() {
    let dir = default_dir();
    let enc = SentenceEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(enc.dim(), 384);
    let ours = enc.embed(&SENTENCES).unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference.py");
    let out = Command::new(&python).arg(&script).arg(&dir).args(SENTENCES).output().unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    let mut worst = 0f32;
    for (a, b) in ours.iter().zip(&reference) {
        let n: f32 = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "not unit norm: {n}");
        worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
    }
    assert!(worst < 1e-4, "embedding max |diff| {worst}");
    let mut sims = vec![];
    for i in 0..SENTENCES.len() {
        for j in i + 1..SENTENCES.len() {
            let (c, r) = (cosine(&ours[i], &ours[j]), cosine(&reference[i], &reference[j]));
            assert!((c - r).abs() < 1e-4, "pair ({i},{j}): {c} vs reference {r}");
            sims.push(((i, j), c));
        }
    }
    // The encoder is semantic, not lexical: walking sentences are closer to each other than to the empty lot.
    let sim = |i, j| sims.iter().find(|(p, _)| *p == (i, j)).unwrap().1;
    assert!(sim(0, 1) > sim(0, 4) + 0.2, "{sims:?}");
    eprintln!("max |diff| {worst:.2e}; similarities {sims:?}");
}

#[test]
fn empty_caption_and_missing_model_are_named() {
    let enc = SentenceEncoder::load(&default_dir()).unwrap();
    let err = enc.embed(&["fine", "  "]).unwrap_err().to_string();
    assert!(err.contains("caption 1"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let err = SentenceEncoder::load(tmp.path()).err().unwrap().to_string();
    assert!(err.contains("config.json") && err.contains("setup.sh"), "{err}");
}
