//! `OpenAiCaptions` against a real HTTP/1.1 server on 127.0.0.1.
//!
//! The server below stands in for a VLM server (llama.cpp's server, Ollama, vLLM) speaking the OpenAI
//! chat-completions API: it accepts one connection per scripted reply, parses the request (request
//! line, headers, a body of Content-Length bytes), records it for the test to check, and answers with
//! the next reply of its script (then closes the connection). The tests check each recorded request's
//! JSON: model, greedy decoding, the prompt, and 4 `image_url` parts holding PNGs of the right size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sfn_captions::openai::{OpenAiCaptions, OpenAiConfig};
use sfn_captions::{CaptionError, CaptionProvider, Clip, Fallback, CLIP_FRAMES, PAPER_PROMPT};

/// What the server does with one request.
enum Reply {
    /// Answers with this status and body.
    Answer(u16, String),
    /// Reads the request, then holds the connection open without answering for this long.
    Silent(Duration),
}

fn ok(content: Value) -> Reply {
    Reply::Answer(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "InternVL2.5-1B",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020},
        })
        .to_string(),
    )
}

/// One request as received.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

struct Server {
    base_url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.requests.lock().unwrap()
    }
}

/// Starts a server that answers one connection per reply of `script`, then stops listening.
fn serve(script: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    thread::spawn(move || {
        for reply in script {
            let Ok((stream, _)) = listener.accept() else { return };
            let Some(request) = read_request(&stream) else { continue };
            seen.lock().unwrap().push(request);
            match reply {
                Reply::Answer(status, body) => {
                    let reason = match status {
                        200 => "OK",
                        400 => "Bad Request",
                        429 => "Too Many Requests",
                        500 => "Internal Server Error",
                        503 => "Service Unavailable",
                        _ => "Whatever",
                    };
                    let mut s = &stream;
                    let head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body.as_bytes());
                    let _ = s.flush();
                }
                // Hold the connection elsewhere so that the next one is accepted at once.
                Reply::Silent(d) => {
                    thread::spawn(move || {
                        thread::sleep(d);
                        drop(stream);
                    });
                }
            }
        }
    });
    Server { base_url, requests }
}

/// Reads an HTTP/1.1 request: request line, headers up to the blank line, then Content-Length bytes.
fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    assert_eq!(parts.next(), Some("HTTP/1.1"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

const H: usize = 6;
const W: usize = 8;

/// Frame k of the test clip is uniform, with value VALUES[k] (so its order can be checked).
const VALUES: [f32; CLIP_FRAMES] = [-1.0, -0.5, 0.5, 1.0];

fn frames(channels: usize) -> Vec<Vec<f32>> {
    VALUES.iter().map(|&v| vec![v; channels * H * W]).collect()
}

fn clip<'a>(data: &'a [Vec<f32>], channels: usize, frame: usize) -> Clip<'a> {
    Clip { clip: "01", frame, frames: [&data[0], &data[1], &data[2], &data[3]], channels, height: H, width: W }
}

fn config(server_url: &str) -> OpenAiConfig {
    OpenAiConfig { base_url: server_url.to_string(), model: "InternVL2.5-1B".into(), timeout: Duration::from_secs(2), retries: 2, retry_backoff: Duration::from_millis(10), ..Default::default() }
}

/// Checks a recorded request against what the provider must send.
fn check_request(req: &Request, model: &str, prompt: &str, channels: usize) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v1/chat/completions");
    assert!(req.header("content-type").unwrap().starts_with("application/json"), "{:?}", req.headers);
    let body: Value = serde_json::from_slice(&req.body).expect("request body is JSON");
    assert_eq!(body["model"], model);
    assert_eq!(body["temperature"].as_f64(), Some(0.0), "greedy decoding");
    assert_eq!(body["top_p"].as_f64(), Some(1.0));
    assert_eq!(body["max_tokens"], 96);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["role"], "user");
    let content = messages[0]["content"].as_array().unwrap();
    let texts: Vec<&str> = content.iter().filter(|p| p["type"] == "text").map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec![prompt]);
    let images: Vec<&Value> = content.iter().filter(|p| p["type"] == "image_url").collect();
    assert_eq!(images.len(), CLIP_FRAMES, "exactly 4 image_url parts");
    for (k, part) in images.iter().enumerate() {
        let url = part["image_url"]["url"].as_str().unwrap();
        let b64 = url.strip_prefix("data:image/png;base64,").expect("PNG data URL");
        let png = base64::engine::general_purpose::STANDARD.decode(b64).expect("valid base64");
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).expect("valid PNG");
        assert_eq!((img.width() as usize, img.height() as usize), (W, H));
        let expected = ((VALUES[k] + 1.0) / 2.0 * 255.0).round() as u8;
        match channels {
            1 => {
                assert_eq!(img.color(), image::ColorType::L8);
                assert!(img.to_luma8().pixels().all(|p| p.0 == [expected]), "frame {k}");
            }
            3 => {
                assert_eq!(img.color(), image::ColorType::Rgb8);
                assert!(img.to_rgb8().pixels().all(|p| p.0 == [expected; 3]), "frame {k}");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn good_reply_is_returned_with_whitespace_normalised() {
    let server =
        serve(vec![ok(json!("  A man in a red coat\n\nwalks   along the path;\n a cyclist passes.  \n")), ok(json!([{"type": "text", "text": "Two people"}, {"type": "text", "text": "\n talk."}]))]);
    let cfg = OpenAiConfig { api_key: Some("sk-test".into()), ..config(&server.base_url) };
    let mut p = OpenAiCaptions::new(cfg);
    assert_eq!(p.name(), format!("openai:{} InternVL2.5-1B", server.base_url));
    let rgb = frames(3);
    assert_eq!(p.caption(&clip(&rgb, 3, 17)).unwrap(), "A man in a red coat walks along the path; a cyclist passes.");
    let gray = frames(1);
    assert_eq!(p.caption(&clip(&gray, 1, 18)).unwrap(), "Two people talk.");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    check_request(&reqs[0], "InternVL2.5-1B", PAPER_PROMPT, 3);
    check_request(&reqs[1], "InternVL2.5-1B", PAPER_PROMPT, 1);
    assert_eq!(reqs[0].header("authorization"), Some("Bearer sk-test"));
}

#[test]
fn custom_prompt_and_no_api_key() {
    let server = serve(vec![ok(json!("A dog."))]);
    let cfg = OpenAiConfig { prompt: "What happens?".into(), model: "llava".into(), ..config(&server.base_url) };
    let mut p = OpenAiCaptions::new(cfg);
    let gray = frames(1);
    assert_eq!(p.caption(&clip(&gray, 1, 3)).unwrap(), "A dog.");
    let reqs = server.requests();
    check_request(&reqs[0], "llava", "What happens?", 1);
    assert_eq!(reqs[0].header("authorization"), None);
}

#[test]
fn server_error_is_retried() {
    let server = serve(vec![Reply::Answer(500, "{\"error\": \"busy\"}".into()), ok(json!("A car turns left."))]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let rgb = frames(3);
    assert_eq!(p.caption(&clip(&rgb, 3, 17)).unwrap(), "A car turns left.");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for r in reqs.iter() {
        check_request(r, "InternVL2.5-1B", PAPER_PROMPT, 3);
    }
    assert_eq!(reqs[0].body, reqs[1].body, "a retry sends the same request");
}

#[test]
fn too_many_requests_is_retried_and_retries_run_out() {
    let server = serve(vec![Reply::Answer(429, "slow down".into()), ok(json!("A bus."))]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let gray = frames(1);
    assert_eq!(p.caption(&clip(&gray, 1, 5)).unwrap(), "A bus.");
    assert_eq!(server.requests().len(), 2);

    let server = serve(vec![Reply::Answer(503, "down".into()), Reply::Answer(500, "still down".into()), Reply::Answer(502, "x".repeat(1000))]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    match p.caption(&clip(&gray, 1, 5)) {
        Err(CaptionError::Http { endpoint, status, body }) => {
            assert_eq!(status, 502);
            assert_eq!(endpoint, format!("{}/chat/completions", server.base_url));
            assert!(body.chars().count() <= 201, "body cut to 200 characters: {}", body.len());
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3, "1 attempt + 2 retries");
}

#[test]
fn client_error_is_not_retried() {
    let server = serve(vec![Reply::Answer(400, "{\"error\": {\"message\": \"image input is not supported\"}}".into()), ok(json!("never sent"))]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let rgb = frames(3);
    match p.caption(&clip(&rgb, 3, 17)) {
        Err(e @ CaptionError::Http { status: 400, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("HTTP 400"), "{msg}");
            assert!(msg.contains("image input is not supported"), "{msg}");
            assert!(msg.contains(&server.base_url), "{msg}");
        }
        other => panic!("expected Http 400, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn malformed_json_is_malformed() {
    let server = serve(vec![Reply::Answer(200, "{\"choices\": [{\"message\": ".into()), ok(json!("never sent"))]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let gray = frames(1);
    match p.caption(&clip(&gray, 1, 17)) {
        Err(e @ CaptionError::Malformed { .. }) => assert!(e.to_string().contains("not JSON"), "{e}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "a malformed reply is not retried");
}

#[test]
fn missing_choices_is_malformed() {
    let server = serve(vec![Reply::Answer(200, json!({"object": "chat.completion", "model": "m"}).to_string())]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let gray = frames(1);
    match p.caption(&clip(&gray, 1, 17)) {
        Err(e @ CaptionError::Malformed { .. }) => assert!(e.to_string().contains("choices"), "{e}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn empty_content_is_empty() {
    let server = serve(vec![ok(json!(" \n\t ")), ok(Value::Null)]);
    let mut p = OpenAiCaptions::new(config(&server.base_url));
    let gray = frames(1);
    for _ in 0..2 {
        match p.caption(&clip(&gray, 1, 17)) {
            Err(CaptionError::Empty { clip, frame, .. }) => {
                assert_eq!(clip, "01");
                assert_eq!(frame, 17);
            }
            other => panic!("expected Empty, got {other:?}"),
        }
    }
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn silent_server_times_out() {
    let server = serve(vec![Reply::Silent(Duration::from_secs(3)), Reply::Silent(Duration::from_secs(3))]);
    let cfg = OpenAiConfig { timeout: Duration::from_millis(300), retries: 1, ..config(&server.base_url) };
    let mut p = OpenAiCaptions::new(cfg);
    let gray = frames(1);
    let start = Instant::now();
    let result = p.caption(&clip(&gray, 1, 17));
    let took = start.elapsed();
    match result {
        Err(e @ CaptionError::Timeout { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("{}/chat/completions", server.base_url)), "{msg}");
            assert!(msg.contains("0.3 s"), "{msg}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(server.requests().len(), 2, "a timeout is retried");
}

#[test]
fn unreachable_endpoint() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let cfg = OpenAiConfig { retries: 1, ..config(&base_url) };
    let mut p = OpenAiCaptions::new(cfg);
    let gray = frames(1);
    match p.caption(&clip(&gray, 1, 17)) {
        Err(e @ CaptionError::Unreachable { .. }) => {
            assert!(e.to_string().contains(&format!("127.0.0.1:{port}/v1/chat/completions")), "{e}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn fallback_reuses_the_last_good_caption() {
    let server = serve(vec![Reply::Answer(400, "bad".into()), ok(json!("A man walks.")), Reply::Answer(500, "oops".into()), ok(json!("")), ok(json!("A man runs."))]);
    let cfg = OpenAiConfig { retries: 0, ..config(&server.base_url) };
    let mut p = Fallback::new(OpenAiCaptions::new(cfg));
    assert_eq!(p.name(), format!("openai:{} InternVL2.5-1B", server.base_url));
    let gray = frames(1);
    // No good caption yet: the error comes through.
    assert!(matches!(p.caption(&clip(&gray, 1, 3)), Err(CaptionError::Http { status: 400, .. })));
    assert_eq!(p.stats.failures, 1);
    assert_eq!(p.caption(&clip(&gray, 1, 4)).unwrap(), "A man walks.");
    assert_eq!(p.stats.ok, 1);
    assert_eq!(p.stats.fallbacks, 0);
    // HTTP 500, then an empty caption: both answered with the last good caption.
    assert_eq!(p.caption(&clip(&gray, 1, 5)).unwrap(), "A man walks.");
    assert_eq!(p.stats.fallbacks, 1);
    assert_eq!(p.caption(&clip(&gray, 1, 6)).unwrap(), "A man walks.");
    assert_eq!(p.stats.fallbacks, 2);
    assert_eq!(p.caption(&clip(&gray, 1, 7)).unwrap(), "A man runs.");
    assert_eq!(p.stats.ok, 2);
    assert_eq!(p.stats.failures, 1);
    assert_eq!(server.requests().len(), 5);
}
