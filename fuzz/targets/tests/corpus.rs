//! Every committed corpus input (and every saved crash, `fuzz/regressions/<target>/`) runs through
//! its target: what the fuzzer once found stays fixed, on stable Rust, without libFuzzer.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.expect("corpus entry").path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn corpora_and_regressions_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for target in sfn_fuzz_targets::TARGETS {
        let corpus = inputs(&root.join("corpus").join(target));
        assert!(corpus.len() >= 3, "fuzz/corpus/{target}: only {} seeds", corpus.len());
        for p in corpus.iter().chain(&inputs(&root.join("regressions").join(target))) {
            let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            eprintln!("{target}: {}", p.display());
            assert!(sfn_fuzz_targets::run(target, &data));
        }
    }
}

/// The seeds reach the interesting paths, so the fuzzer starts from valid inputs.
#[test]
fn seeds_are_valid_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = std::fs::read(root.join("corpus/edge_config/example.toml")).unwrap();
    let text = std::str::from_utf8(&cfg).unwrap();
    sfn_edge::config::EdgeConfig::parse(text, Path::new("/x/edge.toml"), &[]).expect("example config seed loads");
    let m = std::fs::read_to_string(root.join("corpus/model_manifest/ped2-cpu.json")).unwrap();
    sfn_infer::manifest::Manifest::parse(&m, Path::new("/x/model.json")).expect("model.json seed loads");
    let m = std::fs::read_to_string(root.join("corpus/model_manifest/ped2-cpu-ensemble.json")).unwrap();
    let ensemble = sfn_infer::manifest::Manifest::parse(&m, Path::new("/x/model.json")).expect("an ensemble's model.json seed loads");
    assert_eq!(ensemble.members, 2);
    let stream = std::fs::read(root.join("corpus/packet_stream/replay.bin")).unwrap();
    let mut d = sfn_wire::Deframer::<{ sfn_wire::MAX_FRAMED }>::new();
    let ok = stream.iter().filter_map(|&b| d.push(b)).filter(|r| r.is_ok()).count();
    assert!(ok >= 10, "replay.bin seed holds {ok} packets");
}
