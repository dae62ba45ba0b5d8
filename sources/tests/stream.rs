//! Network streams against real servers on loopback: the `ffmpeg` CLI (Debian's, installed by
//! scripts/setup.sh) serving MPEG-TS over TCP and MJPEG over HTTP, and GStreamer's RTSP server
//! (scripts/rtsp-server.py, Debian's gir1.2-gst-rtsp-server-1.0) serving RTP/JPEG over RTSP behind basic
//! auth, interleaved over TCP and over UDP. Frames arrive; the server is killed
//! and restarted and the source reconnects (counted, with a gap in frame indices so the runtime restarts
//! its window); an unreachable URL, a server that never sends and a malformed URL are errors that name
//! the URL without its credentials, within the timeout.
#![cfg(feature = "video")]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sfn_sources::{open_stream, Backoff, FrameSource, StreamOptions};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A 3 s test pattern (96x64, 10 fps, MPEG-2) as MPEG-TS.
fn test_clip(dir: &Path) -> std::path::PathBuf {
    let clip = dir.join("clip.ts");
    let st = Command::new("ffmpeg").args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-t", "3", "-c:v", "mpeg2video", "-f", "mpegts"]).arg(&clip).status().unwrap();
    assert!(st.success());
    clip
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ffmpeg` looping `clip` in real time to `url` as a listening server in `format`.
fn serve(clip: &Path, format: &str, url: &str, extra: &[&str]) -> Server {
    let child = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip)
        .args(extra)
        .args(["-f", format, url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The listening socket is up once a probe connects... but a probe would be the server's one client:
    // give it a moment instead.
    std::thread::sleep(Duration::from_millis(500));
    Server(child)
}

fn options() -> StreamOptions {
    StreamOptions { timeout: Duration::from_secs(2), backoff: Backoff { initial: Duration::from_millis(100), factor: 2.0, max: Duration::from_millis(400), max_attempts: None }, ..Default::default() }
}

/// GStreamer's RTSP server on `port`: a 96x64 moving pattern at 10 fps, RTP/JPEG, user `viewer`.
fn serve_rtsp(port: u16) -> Server {
    use std::io::BufRead;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rtsp-server.py");
    // Debian's Python: the one GStreamer's introspection data is installed for.
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args([&port.to_string(), "96x64", "10", "viewer:s3cret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("/usr/bin/python3 (scripts/setup.sh installs GStreamer's RTSP server for it)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the RTSP server did not start");
    Server(child)
}

fn reconnects_after_the_server_restarts(format: &str, serve_url: &str, url: &str, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let clip = test_clip(tmp.path());
    let (format, serve_url) = (format.to_string(), serve_url.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let start = move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        serve(&clip, &format, &serve_url, &extra)
    };
    reconnects_after_restart(start, url, options());
}

/// Frames arrive from the server `start` brings up; it dies, a new one comes up on the same address and
/// the source reconnects on its own, with a gap in the frame indices.
fn reconnects_after_restart(start: impl Fn() -> Server + Send + Clone + 'static, url: &str, options: StreamOptions) {
    let server = start();
    // On a loaded machine ffmpeg's listener can take longer than `serve`'s pause to come up: the first
    // open is retried while it is refused (the source's own backoff is for reconnects).
    let t0 = Instant::now();
    let mut src = loop {
        match open_stream(url, options.clone()) {
            Ok(src) => break src,
            Err(e) if t0.elapsed() < Duration::from_secs(15) && e.to_string().contains("Connection refused") => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("{e}"),
        }
    };
    assert!(src.describe().contains("96x64"), "{}", src.describe());
    let mut indices = Vec::new();
    for _ in 0..8 {
        let f = src.next_frame().unwrap().expect("a live stream does not end");
        assert_eq!((f.image.width(), f.image.height()), (96, 64));
        indices.push(f.index);
    }
    assert_eq!(indices, (0..8).collect::<Vec<u64>>());
    // The server dies; a new one comes up on the same address a moment later.
    drop(server);
    let restart = {
        let start = start.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            start()
        })
    };
    let t0 = Instant::now();
    let (mut after, mut after_reconnect) = (Vec::new(), 0);
    while after_reconnect < 5 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no frames after the restart: {after:?}, reconnects {}", src.reconnects());
        // Frames still buffered from the first server come first; errors while it is away are the
        // source's business (it reconnects inside next_frame).
        if let Ok(Some(f)) = src.next_frame() {
            after.push(f.index);
            if src.reconnects() >= 1 {
                after_reconnect += 1;
            }
        }
    }
    let _server = restart.join().unwrap();
    assert!(src.reconnects() >= 1, "reconnects {}", src.reconnects());
    // After the reconnect the indices jump by one (the gap the runtime restarts its window on).
    let all: Vec<u64> = indices.iter().chain(&after).copied().collect();
    assert!(all.windows(2).all(|w| w[1] > w[0]), "{all:?}");
    assert!(all.windows(2).any(|w| w[1] == w[0] + 2), "{all:?}");
}

#[test]
fn mpegts_over_tcp_reconnects_after_the_server_restarts() {
    let port = free_port();
    reconnects_after_the_server_restarts("mpegts", &format!("tcp://127.0.0.1:{port}?listen=1"), &format!("tcp://127.0.0.1:{port}"), &["-c", "copy"]);
}

#[test]
fn mjpeg_over_http_reconnects_after_the_server_restarts() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/cam");
    reconnects_after_the_server_restarts("mpjpeg", &url, &url, &["-c:v", "mjpeg", "-q:v", "5", "-listen", "1"]);
}

#[test]
fn rtsp_over_tcp_with_credentials_reconnects_after_the_server_restarts() {
    let port = free_port();
    reconnects_after_restart(move || serve_rtsp(port), &format!("rtsp://viewer:s3cret@127.0.0.1:{port}/cam"), options());
}

#[test]
fn rtsp_over_udp_with_credentials_reconnects_after_the_server_restarts() {
    let port = free_port();
    reconnects_after_restart(move || serve_rtsp(port), &format!("rtsp://viewer:s3cret@127.0.0.1:{port}/cam"), StreamOptions { rtsp_tcp: false, ..options() });
}

#[test]
fn rtsp_with_wrong_credentials_is_refused_without_showing_them() {
    let port = free_port();
    let _server = serve_rtsp(port);
    let e = open_stream(&format!("rtsp://viewer:wrong@127.0.0.1:{port}/cam"), options()).err().expect("401");
    let m = e.to_string();
    assert!(m.contains(&format!("rtsp://***@127.0.0.1:{port}/cam")) && !m.contains("wrong"), "{m}");
}

#[test]
fn bad_urls_are_named_without_credentials_and_never_block() {
    let port = free_port();
    // Nothing listens: refused at once.
    let e = open_stream(&format!("tcp://viewer:s3cret@127.0.0.1:{port}"), options()).err().expect("unreachable");
    let m = e.to_string();
    assert!(m.contains(&format!("tcp://***@127.0.0.1:{port}")) && !m.contains("s3cret"), "{m}");
    // A server that accepts and never sends: an error within about the timeout, not a hang.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(6));
        drop(conn);
    });
    let t0 = Instant::now();
    let e = open_stream(&format!("tcp://127.0.0.1:{silent}"), options()).err().expect("silent server");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(e.to_string().contains(&format!("127.0.0.1:{silent}")), "{e}");
    hold.join().unwrap();
    // Malformed.
    for bad in ["ftp://cam/x", "cam.local:554/stream", "rtsp://user:pw@/x"] {
        let e = open_stream(bad, options()).err().expect("malformed").to_string();
        assert!(e.contains("stream URL") && !e.contains("pw@"), "{e}");
    }
}
