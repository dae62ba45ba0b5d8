//! Captions from an OpenAI-compatible chat-completions endpoint with images: what llama.cpp's server,
//! Ollama and vLLM serve for VLMs such as InternVL2.5-1B.
//!
//! Each clip is one request, `POST {base_url}/chat/completions`, with one user message holding the
//! prompt (by default the paper's, [`crate::PAPER_PROMPT`]) and the clip's 4 frames, oldest first, as
//! `data:image/png;base64,...` URLs (8-bit PNG, gray for 1 channel, RGB for 3; a value v in [-1, 1]
//! becomes round((v + 1) / 2 * 255), clamped to 0..=255). Decoding is greedy (`temperature` 0,
//! `top_p` 1) so that a caption can be reproduced. The caption is `choices[0].message.content` (a string,
//! or an array of parts whose text parts are joined), trimmed, with runs of whitespace and newlines
//! collapsed to single spaces.
//!
//! Errors: connection refused or DNS failure -> [`CaptionError::Unreachable`]; no complete reply within
//! [`OpenAiConfig::timeout`] -> [`CaptionError::Timeout`]; a non-2xx status -> [`CaptionError::Http`]
//! (body cut to 200 characters); a reply that is not JSON or lacks a field ->
//! [`CaptionError::Malformed`]; an empty, whitespace-only or null content -> [`CaptionError::Empty`].
//! Unreachable, Timeout and HTTP 5xx/429 are retried [`OpenAiConfig::retries`] times, waiting
//! [`OpenAiConfig::retry_backoff`] before the first retry and twice as long before each next one; other
//! errors fail at once. No reply makes this module panic.
//!
//! The HTTP client is `ureq` (blocking) with rustls, so both `http://` and `https://` endpoints work.
//! Proxy environment variables are not used.

use std::io;
use std::time::Duration;

use base64::Engine as _;
use image::ImageEncoder as _;
use serde_json::{json, Value};

use crate::{check_clip, CaptionError, CaptionProvider, Clip, PAPER_PROMPT};

/// Longest part of an error reply's body kept in [`CaptionError::Http`] (in characters).
pub const HTTP_BODY_CHARS: usize = 200;

/// Settings of an [`OpenAiCaptions`] provider.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiConfig {
    /// API root, e.g. `http://127.0.0.1:8080/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Model name sent in each request (llama.cpp's server ignores it; Ollama and vLLM need it).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Text sent before the 4 frames.
    pub prompt: String,
    /// Limit for one request, from connecting to the end of the reply.
    pub timeout: Duration,
    /// Retries after a first failed attempt (on Unreachable, Timeout, HTTP 5xx and 429 only).
    pub retries: u32,
    /// Wait before the first retry; doubled before each next one.
    pub retry_backoff: Duration,
    /// `max_tokens` of each request.
    pub max_tokens: u32,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "InternVL2.5-1B".into(),
            api_key: None,
            prompt: PAPER_PROMPT.into(),
            timeout: Duration::from_secs(30),
            retries: 2,
            retry_backoff: Duration::from_millis(500),
            max_tokens: 96,
        }
    }
}

impl OpenAiConfig {
    /// The defaults with this endpoint and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig { base_url: base_url.into(), model: model.into(), ..Default::default() }
    }

    /// The full URL requests are sent to.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    /// The wait before retry number `retry` (0 for the first retry): `retry_backoff * 2^retry`.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.retry_backoff.saturating_mul(2u32.saturating_pow(retry))
    }
}

/// Captions from an OpenAI-compatible chat-completions endpoint (see the module documentation).
pub struct OpenAiCaptions {
    config: OpenAiConfig,
    endpoint: String,
    agent: ureq::Agent,
}

/// One attempt's failure, and whether it is worth another attempt.
struct Failure {
    error: CaptionError,
    retry: bool,
}

impl OpenAiCaptions {
    pub fn new(config: OpenAiConfig) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(config.timeout).try_proxy_from_env(false).build();
        let endpoint = config.endpoint();
        OpenAiCaptions { config, endpoint, agent }
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The full URL requests are sent to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The JSON body of the request for `clip` (checks the clip first).
    pub fn request_body(&self, clip: &Clip) -> Result<Value, CaptionError> {
        check_clip(clip)?;
        let mut content = Vec::with_capacity(1 + clip.frames.len());
        content.push(json!({ "type": "text", "text": self.config.prompt }));
        for (k, frame) in clip.frames.iter().enumerate() {
            let png = frame_png(frame, clip.channels, clip.height, clip.width).map_err(|reason| CaptionError::BadClip {
                clip: clip.clip.into(),
                frame: clip.frame,
                reason: format!("frame {k} of the clip: {reason}"),
            })?;
            let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
            content.push(json!({ "type": "image_url", "image_url": { "url": url } }));
        }
        Ok(json!({
            "model": self.config.model,
            "temperature": 0,
            "top_p": 1,
            "max_tokens": self.config.max_tokens,
            "messages": [{ "role": "user", "content": content }],
        }))
    }

    /// One request and its reply.
    fn attempt(&self, body: &str, clip: &Clip) -> Result<String, Failure> {
        let mut request = self.agent.post(&self.endpoint).set("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match request.send_string(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_else(|e| format!("(body unreadable: {e})"));
                return Err(self.http_failure(status, &body));
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport_failure(&t)),
        };
        let status = response.status();
        let text = response.into_string().map_err(|e| self.read_failure(e))?;
        if !(200..300).contains(&status) {
            return Err(self.http_failure(status, &text));
        }
        let content = parse_reply(&text).map_err(|reason| Failure { error: CaptionError::Malformed { source_name: self.endpoint.clone(), reason }, retry: false })?;
        let caption = content.as_deref().map(normalise_whitespace).unwrap_or_default();
        if caption.is_empty() {
            return Err(Failure { error: CaptionError::Empty { source_name: self.name(), clip: clip.clip.into(), frame: clip.frame }, retry: false });
        }
        Ok(caption)
    }

    fn http_failure(&self, status: u16, body: &str) -> Failure {
        Failure { error: CaptionError::Http { endpoint: self.endpoint.clone(), status, body: truncate_chars(body.trim(), HTTP_BODY_CHARS) }, retry: status >= 500 || status == 429 }
    }

    fn timeout_failure(&self) -> Failure {
        Failure { error: CaptionError::Timeout { endpoint: self.endpoint.clone(), seconds: self.config.timeout.as_secs_f64() }, retry: true }
    }

    fn unreachable(&self, reason: String, retry: bool) -> Failure {
        Failure { error: CaptionError::Unreachable { endpoint: self.endpoint.clone(), reason }, retry }
    }

    /// An error reading the body of a reply.
    fn read_failure(&self, e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => self.timeout_failure(),
            io::ErrorKind::InvalidData => Failure { error: CaptionError::Malformed { source_name: self.endpoint.clone(), reason: format!("unreadable body: {e}") }, retry: false },
            _ => self.unreachable(format!("connection lost while reading the reply: {e}"), true),
        }
    }

    fn transport_failure(&self, t: &ureq::Transport) -> Failure {
        use ureq::ErrorKind as K;
        if is_timeout(t) {
            return self.timeout_failure();
        }
        match t.kind() {
            K::Dns | K::ConnectionFailed | K::Io | K::ProxyConnect => self.unreachable(t.to_string(), true),
            K::BadStatus | K::BadHeader | K::TooManyRedirects => Failure { error: CaptionError::Malformed { source_name: self.endpoint.clone(), reason: t.to_string() }, retry: false },
            // Bad URL, unknown scheme, proxy settings: another try cannot help.
            _ => self.unreachable(t.to_string(), false),
        }
    }
}

impl CaptionProvider for OpenAiCaptions {
    fn name(&self) -> String {
        format!("openai:{} {}", self.config.base_url, self.config.model)
    }

    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError> {
        let body = self.request_body(clip)?.to_string();
        let mut retry = 0;
        loop {
            tracing::debug!(endpoint = %self.endpoint, clip = clip.clip, frame = clip.frame, attempt = retry + 1, "caption request");
            match self.attempt(&body, clip) {
                Ok(caption) => return Ok(caption),
                Err(Failure { error, retry: retriable }) => {
                    if !retriable || retry >= self.config.retries {
                        return Err(error);
                    }
                    let wait = self.config.backoff(retry);
                    tracing::warn!(clip = clip.clip, frame = clip.frame, error = %error, retry = retry + 1,
                        of = self.config.retries, wait_ms = wait.as_millis() as u64, "caption request failed; retrying");
                    std::thread::sleep(wait);
                    retry += 1;
                }
            }
        }
    }
}

/// Whether a transport error (or an error it wraps) is an I/O timeout.
fn is_timeout(t: &ureq::Transport) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(io.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// One frame (CHW, values in [-1, 1]) as an 8-bit PNG: gray for 1 channel, RGB for 3.
pub fn frame_png(frame: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<u8>, String> {
    let color = match channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => return Err(format!("{c} channels; PNG frames need 1 (gray) or 3 (RGB)")),
    };
    let plane = height * width;
    if frame.len() != channels * plane || plane == 0 {
        return Err(format!("{} values, expected {channels}x{height}x{width}", frame.len()));
    }
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(format!("frame of {height}x{width} is too large for a PNG")),
    };
    let mut pixels = vec![0u8; frame.len()];
    for c in 0..channels {
        for (i, &v) in frame[c * plane..(c + 1) * plane].iter().enumerate() {
            pixels[i * channels + c] = to_u8(v);
        }
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(&pixels, w, h, color).map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(png)
}

/// round((v + 1) / 2 * 255), clamped to 0..=255; NaN gives 0.
fn to_u8(v: f32) -> u8 {
    ((v + 1.0) / 2.0 * 255.0).round().clamp(0.0, 255.0) as u8
}

/// `choices[0].message.content` of a chat-completions reply: `Some(text)` for a string or an array of
/// parts (text parts joined with spaces), `None` for null; `Err` describes what is wrong.
fn parse_reply(body: &str) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {}", truncate_chars(body.trim(), HTTP_BODY_CHARS)))?;
    let Some(choices) = v.get("choices") else {
        if let Some(err) = v.get("error") {
            return Err(format!("error reply: {}", truncate_chars(&err.to_string(), HTTP_BODY_CHARS)));
        }
        return Err("no \"choices\" in the reply".into());
    };
    let choices = choices.as_array().ok_or("\"choices\" is not an array")?;
    let first = choices.first().ok_or("\"choices\" is empty")?;
    let message = first.get("message").ok_or("no \"message\" in choices[0]")?;
    let content = message.get("content").ok_or("no \"content\" in choices[0].message")?;
    match content {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for part in parts {
                let kind = part.get("type").and_then(Value::as_str);
                match (kind, part.get("text").and_then(Value::as_str), part.as_str()) {
                    (Some("text") | None, Some(text), _) => texts.push(text),
                    (_, _, Some(text)) => texts.push(text),
                    _ => {}
                }
            }
            Ok(Some(texts.join(" ")))
        }
        other => Err(format!("choices[0].message.content is neither a string nor an array: {other}")),
    }
}

/// Trimmed, with every run of whitespace (newlines included) made one space.
fn normalise_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `n` characters of `s`, with "…" appended when something was cut.
fn truncate_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CLIP_FRAMES;

    #[test]
    fn defaults() {
        let c = OpenAiConfig::default();
        assert_eq!(c.prompt, PAPER_PROMPT);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.retries, 2);
        assert_eq!(c.retry_backoff, Duration::from_millis(500));
        assert_eq!(c.max_tokens, 96);
        assert_eq!(c.api_key, None);
        assert_eq!(c.endpoint(), "http://127.0.0.1:8080/v1/chat/completions");
        let c = OpenAiConfig::new("http://h:1/v1/", "m");
        assert_eq!(c.endpoint(), "http://h:1/v1/chat/completions");
        assert_eq!(OpenAiCaptions::new(c).name(), "openai:http://h:1/v1/ m");
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        let c = OpenAiConfig { retry_backoff: Duration::from_millis(500), ..Default::default() };
        assert_eq!(c.backoff(0), Duration::from_millis(500));
        assert_eq!(c.backoff(1), Duration::from_millis(1000));
        assert_eq!(c.backoff(2), Duration::from_millis(2000));
        // No overflow for absurd retry counts: the factor saturates at u32::MAX.
        assert_eq!(c.backoff(200), Duration::from_millis(500) * u32::MAX);
        let huge = OpenAiConfig { retry_backoff: Duration::MAX, ..Default::default() };
        assert_eq!(huge.backoff(3), Duration::MAX);
    }

    #[test]
    fn pixel_mapping() {
        assert_eq!(to_u8(-1.0), 0);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(0.0), 128); // 127.5 rounds away from zero
        assert_eq!(to_u8(-5.0), 0);
        assert_eq!(to_u8(7.0), 255);
        assert_eq!(to_u8(f32::NAN), 0);
        assert_eq!(to_u8(f32::INFINITY), 255);
    }

    #[test]
    fn png_gray_and_rgb_round_trip() {
        // 2x3 gray.
        let gray = [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0];
        let png = frame_png(&gray, 1, 2, 3).unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(img.color(), image::ColorType::L8);
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.to_luma8().into_raw(), vec![0, 64, 128, 191, 255, 255]);

        // 2x2 RGB, CHW: R plane, G plane, B plane.
        let rgb = [
            -1.0, 1.0, -1.0, 1.0, // R
            1.0, -1.0, -1.0, 1.0, // G
            -1.0, -1.0, 1.0, 1.0, // B
        ];
        let png = frame_png(&rgb, 3, 2, 2).unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(img.color(), image::ColorType::Rgb8);
        assert_eq!(img.to_rgb8().into_raw(), vec![0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255]);
    }

    #[test]
    fn png_refuses_bad_shapes() {
        assert!(frame_png(&[0.0; 8], 2, 2, 2).unwrap_err().contains("2 channels"));
        assert!(frame_png(&[0.0; 3], 1, 2, 2).is_err());
        assert!(frame_png(&[], 1, 0, 2).is_err());
    }

    #[test]
    fn request_body_has_prompt_greedy_decoding_and_four_images() {
        let cfg = OpenAiConfig { model: "vlm".into(), prompt: "Say it.".into(), max_tokens: 12, ..Default::default() };
        let p = OpenAiCaptions::new(cfg);
        let f = vec![0.25f32; 3 * 4 * 5];
        let clip = Clip { clip: "07", frame: 9, frames: [&f; CLIP_FRAMES], channels: 3, height: 4, width: 5 };
        let body = p.request_body(&clip).unwrap();
        assert_eq!(body["model"], "vlm");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["top_p"], 1);
        assert_eq!(body["max_tokens"], 12);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["role"], "user");
        let content = messages[0]["content"].as_array().unwrap();
        assert_eq!(content.len(), 1 + CLIP_FRAMES);
        assert_eq!(content[0], json!({"type": "text", "text": "Say it."}));
        for part in &content[1..] {
            assert_eq!(part["type"], "image_url");
            let url = part["image_url"]["url"].as_str().unwrap();
            let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
            let png = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
            let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
            assert_eq!((img.width(), img.height()), (5, 4));
        }
    }

    #[test]
    fn bad_clips_are_refused_before_any_request() {
        // Nothing listens on this endpoint; a request would give Unreachable, not BadClip.
        let mut p = OpenAiCaptions::new(OpenAiConfig::new("http://127.0.0.1:9/v1", "m"));
        let f = vec![0.0f32; 8];
        let two_channels = Clip { clip: "a", frame: 3, frames: [&f; CLIP_FRAMES], channels: 2, height: 2, width: 2 };
        assert!(matches!(p.caption(&two_channels), Err(CaptionError::BadClip { .. })));
        let short = vec![0.0f32; 7];
        let wrong_len = Clip { clip: "a", frame: 3, frames: [&f, &f, &short, &f], channels: 1, height: 2, width: 4 };
        assert!(matches!(p.caption(&wrong_len), Err(CaptionError::BadClip { .. })));
    }

    #[test]
    fn replies() {
        let ok = |content: Value| json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).to_string();
        assert_eq!(parse_reply(&ok(json!("A man walks."))).unwrap().as_deref(), Some("A man walks."));
        assert_eq!(
            parse_reply(&ok(json!([{"type": "text", "text": "A man"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "walks."}]))).unwrap().as_deref(),
            Some("A man walks.")
        );
        assert_eq!(parse_reply(&ok(Value::Null)).unwrap(), None);
        assert!(parse_reply(&ok(json!(3))).unwrap_err().contains("neither a string nor an array"));
        assert!(parse_reply("<html>oops</html>").unwrap_err().contains("not JSON"));
        assert!(parse_reply("").unwrap_err().contains("not JSON"));
        assert!(parse_reply("{}").unwrap_err().contains("no \"choices\""));
        assert!(parse_reply("{\"error\": {\"message\": \"model not loaded\"}}").unwrap_err().contains("model not loaded"));
        assert!(parse_reply("{\"choices\": {}}").unwrap_err().contains("not an array"));
        assert!(parse_reply("{\"choices\": []}").unwrap_err().contains("empty"));
        assert!(parse_reply("{\"choices\": [{}]}").unwrap_err().contains("no \"message\""));
        assert!(parse_reply("{\"choices\": [{\"message\": {}}]}").unwrap_err().contains("no \"content\""));
        assert!(parse_reply("[1]").is_err());
        assert!(parse_reply("{\"choices\": [null]}").is_err());
    }

    #[test]
    fn whitespace_and_truncation() {
        assert_eq!(normalise_whitespace("  A man\n\n walks\t a  dog.\r\n"), "A man walks a dog.");
        assert_eq!(normalise_whitespace(" \n\t "), "");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "abc…");
        let long: String = "é".repeat(300);
        let t = truncate_chars(&long, HTTP_BODY_CHARS);
        assert_eq!(t.chars().count(), HTTP_BODY_CHARS + 1);
    }
}
