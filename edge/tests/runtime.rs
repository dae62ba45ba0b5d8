//! The `sfn-edge` binary on a small exported model and synthetic footage: it checks configs (the
//! example's included) and runs one. (The runtime's library-level tests across crates are in the
//! end-to-end crate, `tests/tests/runtime.rs`.)

use std::path::Path;
use std::process::Command;

use sfn_e2e::{fixture, test_clip};

fn sfn_edge(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(args).env("RUST_LOG", "warn").output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn sfn_edge_check_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let clip = test_clip(&data);
    let packets = tmp.path().join("packets.bin");
    let cfg = tmp.path().join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n[sinks]\npacket_file = \"{}\"\n",
            onnx.display(),
            clip.display(),
            packets.display()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let (ok, out, err) = sfn_edge(&["check", "--config", c]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("ok: device cam1") && out.contains("tract") && out.contains("scoring window_max_z_8s4 + speed_r2_b6_8s4_m2"), "{out}");
    let (ok, out, err) = sfn_edge(&["run", "--config", c, "--set", "alarm.threshold=2.5"]);
    assert!(ok, "{out}{err}");
    let bytes = std::fs::read(&packets).unwrap();
    let mut d = sfn_wire::Deframer::<64>::new();
    let got: Vec<sfn_wire::ScorePacket> = d.feed(&bytes).map(|p| p.unwrap()).collect();
    assert_eq!(got.len(), 26);
    assert_eq!(got[0].frame, 4);
    assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    // Typos, a bad value, a broken model: named, non-zero exit, no panic.
    let (ok, _, err) = sfn_edge(&["check", "--config", c, "--set", "alarm.treshold=2"]);
    assert!(!ok && err.contains("treshold") && !err.contains("panicked"), "{err}");
    let (ok, _, err) = sfn_edge(&["check", "--config", c, "--set", "model.backend=cuda"]);
    assert!(!ok && err.contains("model.backend"), "{err}");
    let orig = std::fs::read(onnx.join("encoder.onnx")).unwrap();
    let mut enc = orig.clone();
    enc[100] ^= 1;
    std::fs::write(onnx.join("encoder.onnx"), &enc).unwrap();
    let (ok, _, err) = sfn_edge(&["check", "--config", c]);
    assert!(!ok && err.contains("encoder.onnx") && err.contains("sha256"), "{err}");
    std::fs::write(onnx.join("encoder.onnx"), &orig).unwrap();
    std::fs::remove_file(onnx.join("decoder.onnx")).unwrap();
    let (ok, _, err) = sfn_edge(&["run", "--config", c]);
    assert!(!ok && err.contains("decoder.onnx") && !err.contains("panicked"), "{err}");
}

/// Exit status for the service manager: 78 (EX_CONFIG, not restarted by the units) for a config or
/// model that cannot work, 1 for a source that may come back; the error on one line naming the key or
/// path.
#[test]
fn exit_status_tells_config_faults_from_runtime_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    let toml = format!("device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n", onnx.display(), test_clip(&data).display());
    std::fs::write(&cfg, toml).unwrap();
    let c = cfg.to_str().unwrap();
    let status = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(args).env("RUST_LOG", "warn").output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    for cmd in ["check", "run"] {
        let (code, err) = status(&[cmd, "--config", c, "--set", "alarm.threshold=\"high\""]);
        assert_eq!(code, Some(78), "{err}");
        assert!(err.contains("threshold") && err.trim().lines().count() == 1, "{err}");
        let (code, err) = status(&[cmd, "--config", c, "--set", "model.dir=\"/no/such/model\""]);
        assert_eq!(code, Some(78), "{err}");
        assert!(err.contains("model.dir /no/such/model"), "{err}");
        let (code, err) = status(&[cmd, "--config", c, "--set", "source.path=\"/no/such/frames\""]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("/no/such/frames"), "{err}");
    }
    let (code, err) = status(&["check", "--config", &tmp.path().join("missing.toml").to_string_lossy()]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("missing.toml"), "{err}");
    assert_eq!(status(&["check", "--config", c]).0, Some(0));
}

/// The shipped example config passes `check` (it points at the committed Ped2 model and a Ped2 clip in
/// ../shared, present in CI).
#[test]
fn example_config_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge.example.toml");
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ped2/testing/frames/01");
    if !clip.is_dir() {
        eprintln!("skipped: the example's source {} is absent (it is there in CI)", clip.display());
        return;
    }
    let (ok, out, err) = sfn_edge(&["check", "--config", example.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("ped2-cam") && out.contains("fp32") && out.contains("1 sink(s) configured"), "{out}");
}

/// Logs for the journal and for log shippers: with stderr not a terminal, text lines carry no ANSI
/// escape codes; `--log-format json` writes one JSON object a line with time, level, target and the
/// event's fields; a wrong format is refused listing the valid ones.
#[test]
fn log_lines_are_plain_or_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    let toml = format!("device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n", onnx.display(), test_clip(&data).display());
    std::fs::write(&cfg, toml).unwrap();
    let run = |format: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["--log-format", format, "run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let text = run("text");
    assert!(text.contains("INFO") && !text.contains('\u{1b}'), "{text}");
    let json = run("json");
    let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l["ts_ms"].as_u64().is_some() && l["level"].is_string() && l["target"].is_string(), "{l}");
    }
    assert!(lines.iter().any(|l| l["message"] == "running" && l["backend"].is_string()), "{json}");
    let (ok, _, err) = sfn_edge(&["--log-format", "xml", "check", "--config", cfg.to_str().unwrap()]);
    assert!(!ok && err.contains("xml") && err.contains("json") && err.contains("text"), "{err}");
}

/// Under systemd (`Type=notify`): `READY=1` first, `WATCHDOG=1` from the frame loop at half
/// `WATCHDOG_USEC` (not once a frame), `STATUS=` lines, `STOPPING=1` at the end; and no pings while
/// the loop waits on its source, so systemd's watchdog fires when frames stop coming. Received on a
/// real unix datagram socket passed as `NOTIFY_SOCKET`.
#[test]
fn sd_notify_ready_watchdog_and_status() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    let run = |fps: u32, frames: u32, watchdog_usec: u64| -> Vec<(Duration, String)> {
        let toml = format!("device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = true\nfps = {fps}\n", onnx.display(), test_clip(&data).display());
        std::fs::write(&cfg, toml).unwrap();
        let sock = tmp.path().join(format!("notify-{fps}"));
        let rx = UnixDatagram::bind(&sock).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sfn-edge"))
            .args(["run", "--config", cfg.to_str().unwrap(), "--max-frames", &frames.to_string()])
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", watchdog_usec.to_string())
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(k) = rx.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..k]).into_owned();
            let stop = m == "STOPPING=1";
            got.push((t0.elapsed(), m));
            if stop {
                break;
            }
        }
        assert!(child.wait().unwrap().success());
        got
    };
    let pings = |g: &[(Duration, String)]| g.iter().filter(|(_, m)| m == "WATCHDOG=1").map(|(t, _)| *t).collect::<Vec<_>>();
    // 40 frames at 20 fps (about 2 s, 36 scored) with a 1 s watchdog: a ping every 0.5 s, not every frame.
    let g = run(20, 40, 1_000_000);
    assert_eq!(g[0].1, "READY=1", "{g:?}");
    assert_eq!(g.last().unwrap().1, "STOPPING=1");
    assert!(g.iter().any(|(_, m)| m.starts_with("STATUS=") && m.contains("frames/s")), "{g:?}");
    let p = pings(&g);
    let span = g.last().unwrap().0 - g[0].0;
    assert!(p.len() >= 2 && p.len() as f64 <= 1.0 + span.as_secs_f64() / 0.5, "{} pings in {span:?}: {g:?}", p.len());
    assert!(p.len() < 36 / 4, "not once a frame: {g:?}");
    assert!(p.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(450)), "{p:?}");
    // 8 frames at 4 fps with a 100 ms watchdog: while the loop waits 250 ms for each frame no ping is
    // sent, so the gaps exceed the watchdog interval (systemd would restart a camera that stalls).
    let g = run(4, 8, 100_000);
    let p = pings(&g);
    assert_eq!(p.len(), 4, "one ping per scored frame: {g:?}");
    assert!(p.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(200)), "{p:?}");
}

/// SIGTERM mid-run ends the run after the frame in flight: exit 0 well within 5 s, the summary
/// written, fewer frames than the clip holds.
#[test]
fn sigterm_stops_the_run_gracefully() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    let toml = format!("device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = true\nfps = 10\n", onnx.display(), test_clip(&data).display());
    std::fs::write(&cfg, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sfn-edge"))
        .args(["--log-format", "json", "run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = err.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(lines.iter().any(|l| l["message"] == "stop requested: ending the run"), "{err}");
    let done = lines.iter().find(|l| l["message"] == "run finished").unwrap_or_else(|| panic!("{err}"));
    let summary: serde_json::Value = serde_json::from_str(done["summary"].as_str().unwrap()).unwrap();
    let frames = summary["frames_in"].as_u64().unwrap();
    assert!((1..30).contains(&frames), "{summary}");
}

/// `sfn-edge record` turns the configured source into training clips (the model is not loaded), and
/// `--max-disk` stops it with the reason given.
#[test]
fn record_writes_training_clips_from_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    // 30 frames at 10 fps; clips of 1 s = 10 frames.
    let toml = format!("device = \"cam1\"\n[model]\ndir = \"not-needed-for-recording\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\nfps = 10\n", test_clip(&data).display());
    std::fs::write(&cfg, toml).unwrap();
    let out = tmp.path().join("recorded");
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge"))
        .args(["record", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--clip-seconds", "1"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["clips"], serde_json::json!(["01", "02", "03"]), "{s}");
    assert_eq!(s["frames_written"], 30);
    assert_eq!(std::fs::read_dir(out.join("training/frames/03")).unwrap().count(), 10);
    // A second recording continues the numbering; a disk budget of ~12 frames stops it with the reason.
    let one = std::fs::metadata(out.join("training/frames/01/001.jpg")).unwrap().len() as f64;
    let mb = format!("{}", one * 12.5 / 1e6);
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge"))
        .args(["record", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--clip-seconds", "1", "--max-disk", &mb])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["clips"][0], "04", "{s}");
    assert!(s["stopped"].as_str().unwrap().contains("disk budget"), "{s}");
    // Bad values are config faults (exit 78) that name the flag.
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["record", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--minutes=-1"]).env("RUST_LOG", "warn").output().unwrap();
    assert_eq!(o.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--minutes"));
}

/// A disk that fills mid-record (a 64 KiB tmpfs mounted over the output, in a private user and mount
/// namespace): the error names the frame and its file, the clips recorded before stay whole (every
/// frame a complete JPEG, no temporary file left) and a last clip too short to train on is removed.
#[test]
fn a_disk_that_fills_mid_record_keeps_what_was_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    let toml = format!("device = \"cam1\"\n[model]\ndir = \"not-needed-for-recording\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\nfps = 10\n", test_clip(&data).display());
    std::fs::write(&cfg, toml).unwrap();
    let out = tmp.path().join("small-disk");
    std::fs::create_dir(&out).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs '{out}' && '{bin}' record --config '{cfg}' --out '{out}' --clip-seconds 1; rc=$?; tar -C '{out}' -cf '{out}.tar' .; exit $rc",
        out = out.display(),
        bin = env!("CARGO_BIN_EXE_sfn-edge"),
        cfg = cfg.display()
    );
    let o = Command::new("unshare").args(["-rm", "sh", "-c", &script]).env("RUST_LOG", "warn").output().expect("unshare (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device") && err.contains("frame ") && err.contains(".jpg") && err.contains("recorded before it are kept"), "{err}");
    // What the full disk held, unpacked outside the namespace.
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    let st = Command::new("tar").arg("-C").arg(&kept).arg("-xf").arg(format!("{}.tar", out.display())).status().unwrap();
    assert!(st.success());
    let frames_dir = kept.join("training/frames");
    let mut clips: Vec<_> = std::fs::read_dir(&frames_dir).unwrap().map(|e| e.unwrap().path()).collect();
    clips.sort();
    assert!(!clips.is_empty(), "{err}");
    let mut frames = 0;
    for clip in &clips {
        for f in std::fs::read_dir(clip).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            assert!(name.ends_with(".jpg") && !name.starts_with('.'), "left behind: {}", f.display());
            image::open(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            frames += 1;
        }
        assert!(std::fs::read_dir(clip).unwrap().count() >= 5, "{} is too short to train on", clip.display());
    }
    assert!(err.contains(&format!("the {frames} frames recorded before it are kept")), "{frames} frames kept; {err}");
}

/// The frame lines of a JSON sink file without the timing field: what must not depend on how many
/// cameras share the process.
fn frame_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "frame")
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("infer_us");
            v
        })
        .collect()
}

/// Equal JSON values, numbers equal up to 1e-4 relative (or 1e-4 absolute near 0).
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-4 * x.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w))),
        _ => a == b,
    }
}

/// Three recorded clips as three cameras of one process give, per camera, exactly the frames (scores
/// bit for bit) of three single-camera runs, and with their model calls batched (`model.max_batch`)
/// the same up to float rounding; a camera whose stream never sends fails on its own, named, while
/// the others run to the end.
#[test]
fn several_cameras_in_one_process_score_as_separate_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    // Three different clips: the test clip, the training clip, and the test clip played backwards.
    let reversed = tmp.path().join("reversed");
    std::fs::create_dir(&reversed).unwrap();
    let mut frames: Vec<_> = std::fs::read_dir(test_clip(&data)).unwrap().map(|e| e.unwrap().path()).collect();
    frames.sort();
    for (k, f) in frames.iter().rev().enumerate() {
        std::fs::copy(f, reversed.join(format!("{k:03}.png"))).unwrap();
    }
    let clips = [("gate", test_clip(&data)), ("yard", data.join("training/frames/01")), ("door", reversed)];
    let source = |path: &Path| format!("kind = \"folder\"\npath = \"{}\"\nrealtime = false\nstart_time_ms = 0\nfps = 10\n", path.display());
    let head = |json: &str| format!("[model]\ndir = \"{}\"\n[alarm]\nthreshold = 0.5\n[sinks]\njson_file = \"{}\"\n", onnx.display(), tmp.path().join("out").join(json).display());
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    // One process, three cameras.
    let mut multi = format!("device = \"site\"\n{}", head("frames.jsonl"));
    for (name, path) in &clips {
        multi += &format!("[[camera]]\nname = \"{name}\"\n[camera.source]\n{}", source(path));
    }
    let cfg = tmp.path().join("multi.toml");
    std::fs::write(&cfg, &multi).unwrap();
    let (ok, _, err) = sfn_edge(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, _, err) = sfn_edge(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{err}");
    // Three single-camera runs, each writing where its camera of the list did not.
    for (name, path) in &clips {
        let single = tmp.path().join(format!("{name}.toml"));
        let text = format!("device = \"single-{name}\"\n{}[source]\n{}", head(&format!("frames-single-{name}.jsonl")), source(path));
        std::fs::write(&single, text).unwrap();
        let (ok, _, err) = sfn_edge(&["run", "--config", single.to_str().unwrap()]);
        assert!(ok, "{err}");
        let together = frame_lines(&tmp.path().join(format!("out/frames-site-{name}.jsonl")));
        let alone = frame_lines(&tmp.path().join(format!("out/frames-single-{name}.jsonl")));
        assert_eq!(together.len(), 26, "{name}");
        assert_eq!(together, alone, "{name}");
    }
    // The same three cameras with their model calls batched: each camera's frames as alone, up to
    // float rounding (a batch runs on other kernels than batch 1), and the calls did run in batches.
    let batched = multi.replace("[alarm]", "max_batch = 3\nbatch_deadline_ms = 1000\n[alarm]").replace("frames.jsonl", "batched.jsonl");
    std::fs::write(&cfg, &batched).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for (name, _) in &clips {
        let together = frame_lines(&tmp.path().join(format!("out/batched-site-{name}.jsonl")));
        let alone = frame_lines(&tmp.path().join(format!("out/frames-single-{name}.jsonl")));
        assert_eq!(together.len(), alone.len(), "{name}");
        for (a, b) in together.iter().zip(&alone) {
            assert!(close(a, b), "{name}: batched {a} vs alone {b}");
        }
    }
    // The summary, then possibly the batchers' own log lines as they stop.
    let at = err.find("{\n").unwrap_or_else(|| panic!("no summary: {err}"));
    let summary: serde_json::Value = serde_json::Deserializer::from_str(&err[at..]).into_iter().next().unwrap().unwrap();
    let largest = |graph: &str| clips.iter().map(|(n, _)| summary[format!("site-{n}")]["batching"][graph]["largest"].as_u64().unwrap_or(0)).max();
    assert_eq!((largest("encoder"), largest("decoder")), (Some(3), Some(3)), "{summary}");
    // A fourth camera whose stream never sends (a server that accepts and stays silent).
    if cfg!(feature = "video") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(std::time::Duration::from_secs(5));
            drop(conn);
        });
        std::fs::remove_dir_all(tmp.path().join("out")).unwrap();
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        let stalled = format!("{multi}[[camera]]\nname = \"dead\"\n[camera.source]\nkind = \"stream\"\npath = \"tcp://127.0.0.1:{port}\"\ntimeout_ms = 1000\n");
        std::fs::write(&cfg, stalled).unwrap();
        let (ok, _, err) = sfn_edge(&["run", "--config", cfg.to_str().unwrap()]);
        assert!(!ok && err.contains("camera site-dead"), "{err}");
        for (name, _) in &clips {
            assert_eq!(frame_lines(&tmp.path().join(format!("out/frames-site-{name}.jsonl"))).len(), 26, "{name}");
        }
        hold.join().unwrap();
    }
}

/// Snapshots onto a disk that is full (a 16 KiB tmpfs as the event folder, in a private user and
/// mount namespace): the run scores every frame and ends normally, the failed writes are counted in
/// the summary and logged once.
#[test]
fn a_full_snapshot_disk_is_counted_and_scoring_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let events = tmp.path().join("events");
    std::fs::create_dir(&events).unwrap();
    let cfg = tmp.path().join("edge.toml");
    let toml = format!(
        "device = \"cam1\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\nfps = 10\n[alarm]\nthreshold = -1e9\nraise_after = 1\n[snapshot]\ndir = \"{}\"\nmin_interval_s = 0.0\nclip_before = 4\nclip_after = 30\n",
        onnx.display(),
        test_clip(&data).display(),
        events.display()
    );
    std::fs::write(&cfg, toml).unwrap();
    let script = format!("mount -t tmpfs -o size=16k tmpfs '{ev}' && '{bin}' run --config '{cfg}'", ev = events.display(), bin = env!("CARGO_BIN_EXE_sfn-edge"), cfg = cfg.display());
    let o = Command::new("unshare").args(["-rm", "sh", "-c", &script]).env("RUST_LOG", "warn").output().expect("unshare (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let summary: serde_json::Value = serde_json::from_str(&err[err.find("{\n").unwrap_or_else(|| panic!("no summary: {err}"))..]).unwrap();
    let frames = std::fs::read_dir(test_clip(&data)).unwrap().count() as u64;
    assert_eq!(summary["frames_scored"].as_u64(), Some(frames - 4), "{summary}");
    let s = &summary["snapshots"];
    assert!(s["disk_errors"].as_u64().unwrap() > 0 && s["taken"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(err.matches("snapshots: ").count(), 1, "logged once: {err}");
    assert!(err.contains("No space left on device"), "{err}");
}

/// A camera scored against its own scene's calibration (`calibration` in its `[[camera]]`, relative to
/// the config): its z-scores follow that calibration while the camera beside it keeps the export's,
/// each as in a single-camera run with `model.calibration`; a calibration made for another network is
/// refused at `check` (exit 78), naming the file.
#[test]
fn a_camera_takes_its_own_scene_calibration() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    // The scene's calibration: the export's with the visual statistics of a noisier scene.
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(onnx.join("model.json")).unwrap()).unwrap();
    let std0 = m["calibration"]["visual_std"].as_f64().unwrap();
    m["calibration"]["visual_std"] = serde_json::json!(std0 * 2.0);
    std::fs::create_dir(tmp.path().join("gate-cal")).unwrap();
    std::fs::write(tmp.path().join("gate-cal/model.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let clip = test_clip(&data);
    let source = format!("kind = \"folder\"\npath = \"{}\"\nrealtime = false\nstart_time_ms = 0\nfps = 10\n", clip.display());
    let head = |json: &str, cal: &str| format!("[model]\ndir = \"{}\"\n{cal}[sinks]\njson_file = \"{}\"\n", onnx.display(), tmp.path().join("out").join(json).display());
    let multi = format!(
        "device = \"site\"\n{}[[camera]]\nname = \"gate\"\ncalibration = \"gate-cal/model.json\"\n[camera.source]\n{source}[[camera]]\nname = \"yard\"\n[camera.source]\n{source}",
        head("f.jsonl", "")
    );
    let cfg = tmp.path().join("multi.toml");
    std::fs::write(&cfg, &multi).unwrap();
    let (ok, _, err) = sfn_edge(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{err}");
    let single = tmp.path().join("single.toml");
    std::fs::write(&single, format!("device = \"one\"\n{}[source]\n{source}", head("s.jsonl", "calibration = \"gate-cal\"\n"))).unwrap();
    let (ok, _, err) = sfn_edge(&["run", "--config", single.to_str().unwrap()]);
    assert!(ok, "{err}");
    let z = |f: &str| frame_lines(&tmp.path().join("out").join(f)).iter().map(|v| v["visual_z"].as_f64().unwrap()).collect::<Vec<_>>();
    let (gate, yard, alone) = (z("f-site-gate.jsonl"), z("f-site-yard.jsonl"), z("s.jsonl"));
    assert_eq!(gate.len(), 26);
    assert_eq!(gate, alone, "the camera's calibration acts as model.calibration does");
    assert!(gate.iter().zip(&yard).all(|(g, y)| g != y), "the calibrations differ, so do the z-scores");
    // A calibration for another network.
    m["encoder"]["sha256"] = serde_json::json!("00".repeat(32));
    std::fs::write(tmp.path().join("gate-cal/model.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["check", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "warn").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains("gate-cal/model.json") && err.contains("another network"), "{err}");
}
