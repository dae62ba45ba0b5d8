//! Export a trained SFN-VAD from candle to ONNX: `encoder.onnx` (one frame and its difference to the
//! previous one -> cached tokens), `decoder.onnx` (a window of cached tokens + caption -> predicted frame
//! and text feature, every SFFM inside with its TopK routing) and `model.json` (see
//! [`sfn_infer::manifest`]).
//!
//! Precisions: fp32; static int8 in QDQ form, calibrated on normal windows ([`CalibrationSet`]); and
//! weight-only int8. The graph writer is ours ([`onnx`]), on `tract-onnx`'s protobuf types.

pub mod graph;
mod net;
pub mod onnx;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use prost::Message;
use sfn_infer::manifest::{self, GraphSpec, ImageSpec, Manifest, Normalisation, Precision, QuantInfo};
use sfn_infer::tract::TractRunner;
use sfn_infer::Runner;
use sfn_models::scoring::{CausalCalibration, OfflineScoring};
use sfn_models::SfnConfig;
use tract_onnx::pb;

use crate::graph::Weights;
use crate::onnx::{BuildInfo, Mode, QMAX, QMAX_REDUCED};

/// File names inside an export directory.
pub const ENCODER_FILE: &str = "encoder.onnx";
pub const DECODER_FILE: &str = "decoder.onnx";
pub const APPEARANCE_FILE: &str = "appearance.onnx";

/// Errors of the export; each names the tensor, file or setting concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("checkpoint tensor `{name}`: {reason}")]
    Weights { name: String, reason: String },
    #[error("{what}: {source}")]
    Candle { what: String, source: candle_core::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("invalid model config: {0}")]
    Config(#[from] sfn_models::ModelError),
    #[error(transparent)]
    Infer(#[from] sfn_infer::InferError),
}

impl ExportError {
    pub(crate) fn candle(what: &str, source: candle_core::Error) -> Self {
        ExportError::Candle { what: what.into(), source }
    }
}

/// What to export.
pub struct ExportInput<'a> {
    pub cfg: &'a SfnConfig,
    /// Checkpoint tensors by name (`model.safetensors`) of each network: one, or an ensemble's
    /// members in order (their predictions are averaged).
    pub members: Vec<&'a HashMap<String, Tensor>>,
    /// Causal scoring fitted on training footage (`calibration.json`), if any.
    pub calibration: Option<CausalCalibration>,
    pub offline: OfflineScoring,
    /// The semantic branch the model was trained with, if any.
    pub text: Option<sfn_infer::manifest::TextSpec>,
    /// The appearance cue's network and weights (`appearance.json`, `appearance.safetensors`):
    /// exported as `appearance.onnx` where the calibration joins the cue, required then.
    pub appearance: Option<(&'a sfn_models::appearance::AppearanceConfig, &'a HashMap<String, Tensor>)>,
    /// Static int8 weights in [-63, 63] instead of [-127, 127] (for ONNX Runtime on x86 CPUs without
    /// VNNI, whose int8 kernels saturate otherwise; costs weight precision elsewhere).
    pub reduce_range: bool,
}

/// Normal windows for int8 calibration. Each window holds 5 consecutive normalised CHW frames: the frame
/// before the first input (for its motion), then the 4 inputs t-3..t.
pub struct CalibrationSet {
    pub windows: Vec<Vec<f32>>,
    /// Caption feature of each window's input clip (models trained with captions); None = no caption.
    pub texts: Option<Vec<Vec<f32>>>,
    /// Where they came from, for model.json.
    pub source: String,
}

/// Frames per calibration window.
pub const CALIB_FRAMES: usize = 5;

/// Windows per calibration run (bounds memory).
const CALIB_CHUNK: usize = 16;

/// Serialised ONNX bytes.
pub fn to_bytes(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// One built graph and what was built.
pub type Built = (pb::ModelProto, BuildInfo);

/// The encoder and decoder protos for `mode` (no files written).
pub fn build(input: &ExportInput, mode: &Mode) -> Result<(Built, Built), ExportError> {
    input.cfg.validate()?;
    let ws: Vec<Weights> = input.members.iter().map(|m| Weights::new(m)).collect();
    let refs: Vec<&Weights> = ws.iter().collect();
    Ok((graph::encoder_members(input.cfg, &refs, mode.clone())?, graph::decoder_members(input.cfg, &refs, mode.clone())?))
}

/// Adds every distinct site input as an extra graph output; returns the site -> output index map.
fn with_probes(mut model: pb::ModelProto, info: &BuildInfo) -> (pb::ModelProto, Vec<(String, usize)>) {
    let g = model.graph.as_mut().expect("builder always sets a graph");
    let first = g.output.len();
    let mut tensors: Vec<String> = Vec::new();
    let mut map = Vec::new();
    for (site, tensor) in &info.sites {
        let idx = match tensors.iter().position(|t| t == tensor) {
            Some(i) => i,
            None => {
                tensors.push(tensor.clone());
                tensors.len() - 1
            }
        };
        map.push((site.clone(), first + idx));
    }
    for (k, t) in tensors.iter().enumerate() {
        // Through an Identity: a probe may be a graph input, whose declared type must stay its own.
        let name = format!("calibration_probe_{k}");
        g.node.push(pb::NodeProto { input: vec![t.clone()], output: vec![name.clone()], name: format!("probe_{k}"), op_type: "Identity".into(), ..Default::default() });
        let mut vi = onnx::value_info(&name, &[]);
        if let Some(pb::type_proto::Value::TensorType(tt)) = vi.r#type.as_mut().and_then(|ty| ty.value.as_mut()) {
            tt.shape = None;
        }
        g.output.push(vi);
    }
    (model, map)
}

fn update_max(maxes: &mut BTreeMap<String, f32>, map: &[(String, usize)], outs: &[sfn_infer::Array]) {
    for (site, i) in map {
        let m = outs[*i].data.iter().fold(0f32, |a, v| a.max(v.abs()));
        let e = maxes.entry(site.clone()).or_insert(0.0);
        *e = e.max(m);
    }
}

/// Measures every site's input range (max |x|) on the calibration windows with the fp32 graphs run by
/// tract, and returns per-site activation scales max / 127. Sites that saw only zeros (e.g. the caption
/// projection when the windows carry no captions) get no scale and stay fp32.
pub fn calibrate(input: &ExportInput, set: &CalibrationSet) -> Result<BTreeMap<String, f32>, ExportError> {
    let cfg = input.cfg;
    let flen = cfg.image.channels * cfg.image.height * cfg.image.width;
    if set.windows.is_empty() {
        return Err(ExportError::Calibration(format!("no calibration windows from {}", set.source)));
    }
    for (i, w) in set.windows.iter().enumerate() {
        if w.len() != CALIB_FRAMES * flen {
            return Err(ExportError::Calibration(format!("window {i} from {} has {} values, expected {CALIB_FRAMES} frames of {flen}", set.source, w.len())));
        }
        if let Some(j) = w.iter().position(|v| !v.is_finite()) {
            return Err(ExportError::Calibration(format!("window {i} from {}: value {j} is not finite", set.source)));
        }
    }
    let ((enc, enc_info), (dec, dec_info)) = build(input, &Mode::Fp32)?;
    let (enc, enc_map) = with_probes(enc, &enc_info);
    let (dec, dec_map) = with_probes(dec, &dec_info);
    let mut enc_run = TractRunner::from_proto(enc, Path::new("<calibration encoder>"))?;
    let mut dec_run = TractRunner::from_proto(dec, Path::new("<calibration decoder>"))?;
    let i = &cfg.image;
    // An ensemble's encodings are its members' side by side on the last axis.
    let k = input.members.len();
    let (np, da, dm, dt) = (cfg.num_patches(), k * cfg.appearance.dim, k * cfg.motion.dim, cfg.text_dim);
    let mut maxes = BTreeMap::new();
    if let Some(t) = &set.texts {
        if t.len() != set.windows.len() || t.iter().any(|v| v.len() != cfg.text_dim) {
            return Err(ExportError::Calibration(format!("{} caption features for {} windows, each must be {}-d", t.len(), set.windows.len(), cfg.text_dim)));
        }
    }
    for (ci, chunk) in set.windows.chunks(CALIB_CHUNK).enumerate() {
        let n = chunk.len();
        let start = ci * CALIB_CHUNK;
        let (mut frames, mut prevs, mut last, mut before_last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for w in chunk {
            frames.extend_from_slice(&w[flen..5 * flen]);
            prevs.extend_from_slice(&w[..4 * flen]);
            last.extend_from_slice(&w[4 * flen..]);
            before_last.extend_from_slice(&w[3 * flen..4 * flen]);
        }
        let shape = [4 * n, i.channels, i.height, i.width];
        let eo = enc_run.run(&[(manifest::names::FRAME, &shape, &frames), (manifest::names::PREV_FRAME, &shape, &prevs)])?;
        update_max(&mut maxes, &enc_map, &eo);
        let (tokens, pe, motion) = (&eo[0].data, &eo[1].data, &eo[2].data);
        let (tl, ml) = (np * da, (np + 1) * dm);
        let mut skip = Vec::with_capacity(n * tl);
        let mut mot = Vec::with_capacity(n * 3 * ml);
        for j in 0..n {
            skip.extend_from_slice(&pe[(4 * j + 3) * tl..(4 * j + 4) * tl]);
            mot.extend_from_slice(&motion[(4 * j + 1) * ml..(4 * j + 4) * ml]);
        }
        let (text, mask) = match &set.texts {
            Some(t) => (t[start..start + n].concat(), vec![1f32; n]),
            None => (vec![0f32; n * dt], vec![0f32; n]),
        };
        let fshape = [n, i.channels, i.height, i.width];
        let shapes = [vec![n, 4, np, da], vec![n, np, da], vec![n, 3, np + 1, dm], vec![n, dt], vec![n, 1]];
        let mut dec_in: Vec<(&str, &[usize], &[f32])> = vec![
            (manifest::names::FRAME_TOKENS, &shapes[0], tokens),
            (manifest::names::SKIP, &shapes[1], &skip),
            (manifest::names::MOTIONS, &shapes[2], &mot),
            (manifest::names::TEXT, &shapes[3], &text),
            (manifest::names::TEXT_MASK, &shapes[4], &mask),
            (manifest::names::LAST_FRAME, &fshape, &last),
        ];
        if input.cfg.decoder.pixel_stem > 0 {
            dec_in.push((manifest::names::PREV_FRAME, &fshape, &before_last));
        }
        let do_ = dec_run.run(&dec_in)?;
        update_max(&mut maxes, &dec_map, &do_);
    }
    // The patch embeddings read normalised pixels (and their differences), whose full range is known:
    // use it, so a bright anomaly is not clipped to the brightest normal pixel.
    for m in 0..k {
        let p = graph::member_prefix(m);
        maxes.insert(format!("{p}appearance.patch_embed.proj"), 1.0);
        maxes.insert(format!("{p}motion.patch_embed.proj"), 2.0);
    }
    Ok(maxes.into_iter().filter(|(_, m)| m.is_finite() && *m > 0.0).map(|(s, m)| (s, m / QMAX)).collect())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    sfn_fsio::write_atomic(path, bytes).map_err(|source| ExportError::Io { path: path.into(), source })
}

/// Exports to `out` (created if needed) at `precision`; `calib` is required for [`Precision::Int8Qdq`].
pub fn export(input: &ExportInput, out: &Path, precision: Precision, calib: Option<&CalibrationSet>) -> Result<Manifest, ExportError> {
    input.cfg.validate()?;
    let mode = match precision {
        Precision::Fp32 => Mode::Fp32,
        Precision::Int8WeightOnly => Mode::Int8WeightOnly,
        Precision::Int8Qdq => {
            let set = calib.ok_or_else(|| ExportError::Calibration("static int8 needs calibration windows (--calib ROOT)".into()))?;
            Mode::Int8Static { scales: calibrate(input, set)?, weight_max: if input.reduce_range { QMAX_REDUCED } else { QMAX } }
        }
    };
    std::fs::create_dir_all(out).map_err(|source| ExportError::Io { path: out.into(), source })?;
    let ((enc, enc_info), (dec, dec_info)) = build(input, &mode)?;
    write_file(&out.join(ENCODER_FILE), &to_bytes(&enc))?;
    write_file(&out.join(DECODER_FILE), &to_bytes(&dec))?;
    // The appearance cue goes to the camera only where the calibration joins it (fp32 in every
    // precision: a few small matrices per moving box).
    let appearance = match (input.calibration.as_ref().and_then(|c| c.appearance.as_ref()), input.appearance) {
        (None, _) => None,
        (Some(_), None) => return Err(ExportError::Calibration("calibration.appearance: the calibration joins the appearance cue but the model has no appearance.json".into())),
        (Some(j), Some((acfg, aw))) => {
            if j.boxes != acfg.boxes {
                return Err(ExportError::Calibration(format!("calibration.appearance.boxes {:?} differ from appearance.json's {:?} (recalibrate)", j.boxes, acfg.boxes)));
            }
            let (proto, _) = graph::appearance(acfg, &Weights::new(aw))?;
            write_file(&out.join(APPEARANCE_FILE), &to_bytes(&proto))?;
            Some(GraphSpec::describe_file(out, APPEARANCE_FILE)?)
        }
    };
    let quantization = match precision {
        Precision::Fp32 => None,
        _ => {
            let mut kept = vec![
                "SFFM routers (routing decisions must match the trained model)".to_string(),
                "attention Q K^T and A V (activation x activation)".into(),
                "LayerNorm, softmax, GELU/SiLU, biases, positions, CLS/no-caption tokens".into(),
            ];
            let mut unq: Vec<String> = enc_info.unquantized_sites.iter().chain(&dec_info.unquantized_sites).cloned().collect();
            unq.dedup();
            if !unq.is_empty() {
                kept.push(format!("inputs of {} (calibration windows gave them no range)", unq.join(", ")));
            }
            let weight_max = mode.weight_max();
            Some(QuantInfo {
                weights: format!("int8 symmetric per output channel, zero point 0, range [-{weight_max}, {weight_max}]"),
                weight_max: weight_max as u8,
                activations: if precision == Precision::Int8Qdq {
                    "int8 symmetric per tensor (QuantizeLinear/DequantizeLinear), scale = max |x| / 127 over the calibration windows".into()
                } else {
                    "fp32".into()
                },
                calibration_windows: calib.filter(|_| precision == Precision::Int8Qdq).map_or(0, |c| c.windows.len()),
                calibration_source: calib.filter(|_| precision == Precision::Int8Qdq).map(|c| c.source.clone()),
                kept_fp32: kept,
                quantized_weights: enc_info.quantized_weights + dec_info.quantized_weights,
                quantized_activations: enc_info.quantized_activations + dec_info.quantized_activations,
            })
        }
    };
    let cfg = input.cfg;
    let (gh, gw) = cfg.grid();
    let m = Manifest {
        format: manifest::FORMAT.into(),
        format_version: manifest::FORMAT_VERSION,
        producer: format!("sfn-export {}", env!("CARGO_PKG_VERSION")),
        precision,
        opset: onnx::OPSET,
        ir_version: onnx::IR_VERSION,
        image: ImageSpec { height: cfg.image.height, width: cfg.image.width, channels: cfg.image.channels },
        normalisation: Normalisation::trainer(cfg.image.channels),
        window: 4,
        patch: cfg.patch,
        grid: [gh, gw],
        text_dim: cfg.text_dim,
        encoder: GraphSpec::describe_file(out, ENCODER_FILE)?,
        decoder: GraphSpec::describe_file(out, DECODER_FILE)?,
        members: input.members.len(),
        appearance,
        calibration: input.calibration.clone(),
        offline_scoring: input.offline.clone(),
        quantization,
        text: input.text.clone(),
        config: serde_json::to_value(cfg).map_err(|e| ExportError::Calibration(format!("config to JSON: {e}")))?,
    };
    let path = m.write(out)?;
    tracing::info!(path = %path.display(), precision = precision.name(), "exported");
    Ok(m)
}

/// Floating-point operations (2 per multiply-add, matrix products and convolutions only) of one encoder
/// call per frame and one decoder call per window: the roofline's F.
pub fn flops(cfg: &SfnConfig) -> (f64, f64) {
    let f = |x: usize| x as f64;
    let np = f(cfg.num_patches());
    let cpp = f(cfg.image.channels * cfg.patch * cfg.patch);
    let vit = |v: &sfn_models::config::VitConfig, t: f64| {
        let d = f(v.dim);
        f(v.depth) * (2.0 * t * d * 3.0 * d + 2.0 * 2.0 * t * t * d + 2.0 * t * d * d + 2.0 * 2.0 * t * d * d * f(v.mlp_ratio))
    };
    let (da, dm, d, dt) = (f(cfg.appearance.dim), f(cfg.motion.dim), f(cfg.model_dim), f(cfg.text_dim));
    let encoder = 2.0 * np * cpp * da + vit(&cfg.appearance, np) + 2.0 * np * cpp * dm + vit(&cfg.motion, np + 1.0);
    let t = np + 2.0;
    let s = &cfg.sffm;
    let filter = match s.kind {
        sfn_models::config::FilterKind::Sffm => {
            let nb = f(s.routed_experts * s.bottleneck);
            let sb = f(s.shared_experts * s.bottleneck);
            2.0 * t * d * f(s.routed_experts) + 2.0 * 2.0 * t * d * nb + 2.0 * 2.0 * t * d * sb
        }
        sfn_models::config::FilterKind::Mlp => 2.0 * 2.0 * t * d * d * f(cfg.decoder.vit.mlp_ratio),
        // Addressing (x M^T) and reading (w M).
        sfn_models::config::FilterKind::Memory => 2.0 * 2.0 * t * d * f(s.memory_slots),
    };
    // The head works at 1/s resolution: s^2 fewer positions, s^2 times the channels in and out.
    let s2 = f(cfg.decoder.head_scale * cfg.decoder.head_scale);
    let hid = f(cfg.decoder.head_channels);
    let pp = f(cfg.patch * cfg.patch) / s2;
    let hw = f(cfg.image.height * cfg.image.width) / s2;
    let (st, c) = (f(cfg.decoder.pixel_stem), f(cfg.image.channels) * s2);
    let mut head = 2.0 * np * (d + da) * hid * pp + 2.0 * hw * hid * (hid + st) * 9.0 + 2.0 * hw * hid * c;
    if cfg.decoder.pixel_stem > 0 {
        // The stem's two convolutions and the head's second 3x3 convolution.
        head += 2.0 * hw * 9.0 * (st * 2.0 * c + st * st + hid * hid);
    }
    if cfg.decoder.warp_radius > 0 {
        // The shift logits from the last convolution, their softmax and the weighted sum of shifts.
        let k = f(sfn_models::mjad::warp_shifts(cfg.decoder.warp_radius));
        head += 2.0 * hw * hid * k + 3.0 * hw * k + 2.0 * hw * k * c;
    }
    let decoder = 2.0 * np * 4.0 * da * d + 2.0 * (np + 1.0) * 3.0 * dm * d + 2.0 * dt * d + vit(&cfg.decoder.vit, t) + f(cfg.decoder.vit.depth) * filter + head + 2.0 * (d * d + d * dt);
    (encoder, decoder)
}
