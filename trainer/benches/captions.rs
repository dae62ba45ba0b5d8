//! Caption-stage cost per caption on real Ped2 clips, providers side by side in one run, and the cost
//! of the sentence encoder (all-MiniLM-L6-v2 in candle) per caption at batch 1 and 32.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench -p sfn-trainer --bench captions -- [--data ROOT] [--clips N]
//! ```
//! Providers: the motion describer (120x180 gray), JSONL lookup, and the OpenAI-compatible client
//! against a stand-in server in this process that answers at once — that row is the client's own
//! cost (PNG + base64 + HTTP); a real VLM adds its generation time, which cannot run here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sfn_captions::describe::MotionDescriber;
use sfn_captions::jsonl::{write_jsonl, JsonlCaptions};
use sfn_captions::openai::{OpenAiCaptions, OpenAiConfig};
use sfn_captions::{CaptionProvider, Clip};
use sfn_trainer::data::{Dataset, FrameFormat};

fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if f.len() > 11 {
        (f[10] + f[11]) / 100.0
    } else {
        f64::NAN
    }
}

/// A stand-in for a VLM server: answers every chat-completions POST at once with a fixed caption.
fn stand_in_server() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut len = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let reply = r#"{"choices":[{"message":{"role":"assistant","content":"Two people walk along the walkway."}}]}"#;
            let mut s = reader.into_inner();
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
        }
    });
    Ok(port)
}

fn main() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut data = std::env::var_os("SFN_DATA").map(|d| PathBuf::from(d).join("ped2")).unwrap_or_else(|| repo.join("../shared/data/ped2"));
    let mut clips_n = 2usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--data" => data = it.next().context("--data needs a value")?.into(),
            "--clips" => clips_n = it.next().context("--clips needs a value")?.parse()?,
            "--bench" => {}
            other => bail!("unknown argument {other} (--data, --clips)"),
        }
    }
    if !data.join("testing").exists() {
        bail!("{}: no Ped2 here (set SFN_DATA or --data)", data.display());
    }
    let fmt = FrameFormat { height: 120, width: 180, channels: 1 };
    let ds = Dataset::open(&data, "testing", &fmt)?;
    let mut clips = Vec::new();
    for clip in ds.clips.iter().take(clips_n) {
        for t in 3..clip.frames.len() {
            clips.push((clip.name.clone(), t, [&clip.frames[t - 3][..], &clip.frames[t - 2], &clip.frames[t - 1], &clip.frames[t]]));
        }
    }
    let tmp = tempfile::tempdir()?;
    let jsonl = tmp.path().join("c.jsonl");
    let entries: Vec<(String, usize, String)> = clips.iter().map(|(c, t, _)| (c.clone(), *t, format!("caption of clip {c} frame {t}"))).collect();
    write_jsonl(&jsonl, &entries)?;
    let port = stand_in_server()?;
    let mut providers: Vec<(String, Box<dyn CaptionProvider>)> = vec![
        ("motion describer (120x180)".into(), Box::new(MotionDescriber::default())),
        ("JSONL lookup".into(), Box::new(JsonlCaptions::open(&jsonl)?)),
        (
            "OpenAI-compatible client, stand-in server (protocol cost only)".into(),
            Box::new(OpenAiCaptions::new(OpenAiConfig { base_url: format!("http://127.0.0.1:{port}/v1"), model: "stand-in".into(), ..Default::default() })),
        ),
    ];
    println!(
        "{} Ped2 clips of 4 frames (test clips {}), one pass each, providers interleaved by clip\n",
        clips.len(),
        ds.clips.iter().take(clips_n).map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    let mut secs = vec![0f64; providers.len()];
    let mut cpu = vec![0f64; providers.len()];
    let mut example = vec![String::new(); providers.len()];
    for (name, t, frames) in &clips {
        let c = Clip { clip: name, frame: *t, frames: *frames, channels: 1, height: fmt.height, width: fmt.width };
        for (i, (_, p)) in providers.iter_mut().enumerate() {
            let (c0, t0) = (process_cpu_seconds(), Instant::now());
            let caption = p.caption(&c)?;
            secs[i] += t0.elapsed().as_secs_f64();
            cpu[i] += process_cpu_seconds() - c0;
            if example[i].is_empty() || (*t == 60 && name == "01") {
                example[i] = caption;
            }
        }
    }
    println!("| provider | ms per caption | CPU / wall | example |");
    println!("|---|---:|---:|---|");
    for (i, (name, _)) in providers.iter().enumerate() {
        println!("| {name} | {:.3} | {:.2} | {} |", 1e3 * secs[i] / clips.len() as f64, cpu[i] / secs[i].max(1e-9), example[i]);
    }

    let enc = sfn_text::SentenceEncoder::load_default().map_err(|e| anyhow::anyhow!("{e}"))?;
    let texts: Vec<String> = clips
        .iter()
        .take(64)
        .map(|(n, t, f)| {
            let c = Clip { clip: n, frame: *t, frames: *f, channels: 1, height: fmt.height, width: fmt.width };
            MotionDescriber::default().caption(&c).unwrap_or_default()
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    enc.embed(&refs[..1]).map_err(|e| anyhow::anyhow!("{e}"))?; // warm-up
    let (c0, t0) = (process_cpu_seconds(), Instant::now());
    for t in &refs {
        enc.embed(&[t]).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (b1, b1cpu) = (t0.elapsed().as_secs_f64() / refs.len() as f64, process_cpu_seconds() - c0);
    let b1wall = b1 * refs.len() as f64;
    let (c0, t0) = (process_cpu_seconds(), Instant::now());
    for chunk in refs.chunks(32) {
        enc.embed(chunk).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (b32, b32cpu) = (t0.elapsed().as_secs_f64() / refs.len() as f64, process_cpu_seconds() - c0);
    let b32wall = b32 * refs.len() as f64;
    let words = texts.iter().map(|t| t.split_whitespace().count()).sum::<usize>() as f64 / texts.len() as f64;
    println!("\nall-MiniLM-L6-v2 (candle, native), {} describer captions of {words:.0} words on average\n", refs.len());
    println!("| batch | ms per caption | CPU / wall |");
    println!("|---:|---:|---:|");
    println!("| 1 | {:.2} | {:.2} |", 1e3 * b1, b1cpu / b1wall);
    println!("| 32 | {:.2} | {:.2} |", 1e3 * b32, b32cpu / b32wall);
    Ok(())
}
