//! `model.json`: what an exported model directory holds and how to feed it.
//!
//! ```text
//! OUT/model.json     this manifest
//! OUT/encoder.onnx   frame [B,C,H,W], prev_frame [B,C,H,W] -> tokens, patch_embed, motion
//! OUT/decoder.onnx   frame_tokens, skip, motion, text, text_mask, last_frame -> frame, text_pred
//! OUT/appearance.onnx  boxes -> box_errors (only where the calibration joins the appearance cue)
//! ```
//!
//! Every ONNX file is listed with its sha256, size and I/O signature; [`Manifest::open`] checks all
//! three before anything runs, so a file swapped or re-exported behind the manifest's back is refused
//! with the file and the mismatch named.

use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Deserialize, Serialize};
use sfn_scoring::{CausalCalibration, OfflineScoring};
use sha2::{Digest, Sha256};
use tract_onnx::pb;

use crate::InferError;

/// File name of the manifest inside an export directory.
pub const MANIFEST: &str = "model.json";
/// Value of [`Manifest::format`].
pub const FORMAT: &str = "sfn-vad-onnx";
/// The manifest layout this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the symbolic batch dimension in every graph.
pub const BATCH: &str = "batch";

/// Input and output names of the two graphs.
pub mod names {
    /// Encoder input: the frame, normalised, [B, C, H, W].
    pub const FRAME: &str = "frame";
    /// Encoder input: the frame before it (motion = frame - prev_frame) [B, C, H, W].
    pub const PREV_FRAME: &str = "prev_frame";
    /// Encoder output: appearance ViT tokens [B, Np, d_a].
    pub const TOKENS: &str = "tokens";
    /// Encoder output: patch embedding before the ViT [B, Np, d_a] (the decoder's skip for the last frame).
    pub const PATCH_EMBED: &str = "patch_embed";
    /// Encoder output: motion tokens of frame - prev_frame, CLS first [B, 1 + Np, d_m].
    pub const MOTION: &str = "motion";
    /// Decoder input: tokens of frames t-3..t, oldest first [B, 4, Np, d_a].
    pub const FRAME_TOKENS: &str = "frame_tokens";
    /// Decoder input: patch_embed of frame t [B, Np, d_a].
    pub const SKIP: &str = "skip";
    /// Decoder input: motion of frames t-2..t, oldest first [B, 3, 1 + Np, d_m].
    pub const MOTIONS: &str = "motion";
    /// Decoder input: caption feature [B, text_dim] (ignored where text_mask is 0).
    pub const TEXT: &str = "text";
    /// Decoder input: 1 where a caption feature is given, 0 to use the learned no-caption token [B, 1].
    pub const TEXT_MASK: &str = "text_mask";
    /// Decoder input: frame t [B, C, H, W] (the residual head adds it).
    pub const LAST_FRAME: &str = "last_frame";
    /// Decoder output: predicted frame t+1 [B, C, H, W].
    pub const PRED_FRAME: &str = "frame";
    /// Decoder output: predicted text feature [B, text_dim].
    pub const PRED_TEXT: &str = "text_pred";
    /// Appearance input: moving-box descriptors (crop and frame difference, pooled) [N, D].
    pub const BOXES: &str = "boxes";
    /// Appearance output: each box's reconstruction error [N].
    pub const BOX_ERRORS: &str = "box_errors";
}

/// Numeric form of the weights and activations in the ONNX files.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Plain fp32.
    Fp32,
    /// QDQ static int8: symmetric per-channel int8 weights, per-tensor int8 activations (calibrated).
    Int8Qdq,
    /// int8 weights (symmetric, per channel) dequantised in the graph; fp32 activations.
    Int8WeightOnly,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8Qdq => "int8_qdq",
            Precision::Int8WeightOnly => "int8_weight_only",
        }
    }
}

/// One dimension: a fixed size or the symbolic batch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Dim {
    Fixed(u64),
    Symbol(String),
}

/// Name, element type and shape of a graph input or output.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// ONNX element type name; always "float32" here.
    pub dtype: String,
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// A float32 tensor whose first dimension is the batch.
    pub fn batched(name: &str, rest: &[usize]) -> Self {
        let mut shape = vec![Dim::Symbol(BATCH.into())];
        shape.extend(rest.iter().map(|&d| Dim::Fixed(d as u64)));
        TensorSpec { name: name.into(), dtype: "float32".into(), shape }
    }

    /// The fixed dimensions after the batch.
    pub fn per_sample(&self) -> Vec<usize> {
        self.shape
            .iter()
            .skip(1)
            .map(|d| match d {
                Dim::Fixed(n) => *n as usize,
                Dim::Symbol(_) => 0,
            })
            .collect()
    }

    /// Number of values per sample (product of the fixed dims after the batch).
    pub fn sample_len(&self) -> usize {
        self.per_sample().iter().product()
    }
}

/// One ONNX file of the export.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GraphSpec {
    /// File name, relative to the manifest's directory.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    pub bytes: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// Frame geometry the graphs expect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ImageSpec {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// How camera pixels become the `frame` input (the trainer's data loader does exactly this).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Normalisation {
    /// "gray" (luma, Rec. 709 weights) or "rgb" (CHW planes R, G, B).
    pub color: String,
    /// Resize filter from the native size: "triangle" (bilinear), computed in f32 without 8-bit rounding.
    pub resize: String,
    /// Value = scale * v + offset for v in [0, 1] (8-bit v / 255), clamped to `range`.
    pub scale: f32,
    pub offset: f32,
    pub range: [f32; 2],
}

impl Normalisation {
    /// The trainer's convention: gray or RGB by channel count, triangle resize, [0,1] -> [-1,1].
    pub fn trainer(channels: usize) -> Self {
        Normalisation { color: if channels == 1 { "gray".into() } else { "rgb".into() }, resize: "triangle".into(), scale: 2.0, offset: -1.0, range: [-1.0, 1.0] }
    }

    /// Maps one value in [0, 1] to the model's input range.
    pub fn apply(&self, v: f32) -> f32 {
        (self.scale * v + self.offset).clamp(self.range[0], self.range[1])
    }
}

/// How an int8 export was made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct QuantInfo {
    /// "int8 symmetric per-channel (output channel), zero point 0, range [-127, 127]".
    pub weights: String,
    /// The weights' integer range, [-weight_max, weight_max]: 127, or 63 for an export with the
    /// reduced range (ONNX Runtime's int8 kernels on x86 CPUs without VNNI saturate otherwise).
    #[serde(default = "full_weight_range", skip_serializing_if = "is_full_weight_range")]
    pub weight_max: u8,
    /// For QDQ: "int8 symmetric per-tensor, scale = max |x| / 127 over the calibration windows"; else "fp32".
    pub activations: String,
    /// Normal windows the activation ranges were measured on (0 for weight-only).
    pub calibration_windows: usize,
    /// Where they came from (dataset root and split), for the record.
    pub calibration_source: Option<String>,
    /// Parts kept in fp32 on purpose, with the reason.
    pub kept_fp32: Vec<String>,
    /// Quantised weight tensors / activation sites.
    pub quantized_weights: usize,
    pub quantized_activations: usize,
}

fn full_weight_range() -> u8 {
    127
}

fn is_full_weight_range(m: &u8) -> bool {
    *m == 127
}

/// How the decoder's `text` input is made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TextSpec {
    /// Sentence encoder, e.g. "all-MiniLM-L6-v2" (mean pooling, L2-normalised), run natively by `sfn-text`.
    pub encoder: String,
    pub dim: usize,
    /// Caption provider used for training, e.g. "motion-describer v1 (...)".
    pub provider: String,
}

/// Largest image side a manifest may declare.
pub const MAX_SIDE: usize = 8192;
/// Most networks an ensemble export may average.
pub const MAX_MEMBERS: usize = 16;
/// Largest caption-feature width a manifest may declare.
pub const MAX_TEXT_DIM: usize = 65536;

fn one_member() -> usize {
    1
}

fn is_one_member(n: &usize) -> bool {
    *n == 1
}

/// The whole manifest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    /// Program that wrote the export, e.g. "sfn-export 0.1.0".
    pub producer: String,
    pub precision: Precision,
    pub opset: i64,
    pub ir_version: i64,
    pub image: ImageSpec,
    pub normalisation: Normalisation,
    /// Frames per window fed to the decoder (4) and motions (3).
    pub window: usize,
    pub patch: usize,
    /// Patch grid (rows, columns).
    pub grid: [usize; 2],
    pub text_dim: usize,
    pub encoder: GraphSpec,
    pub decoder: GraphSpec,
    /// Networks whose predictions the graphs average: an ensemble's members, whose encodings lie side
    /// by side on the last axis of the encoder's outputs (1: one network).
    #[serde(default = "one_member", skip_serializing_if = "is_one_member")]
    pub members: usize,
    /// The appearance cue's network (fp32 in every precision), where the calibration joins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance: Option<GraphSpec>,
    /// Causal scoring fitted on the training footage, if the checkpoint has it.
    pub calibration: Option<CausalCalibration>,
    /// Offline scoring settings for replay.
    pub offline_scoring: OfflineScoring,
    pub quantization: Option<QuantInfo>,
    /// The semantic branch: which sentence encoder and caption provider the model was trained with
    /// (None: trained without captions; feed `text_mask` 0).
    #[serde(default)]
    pub text: Option<TextSpec>,
    /// The network's full config (the trainer's `config.json`), for the record.
    pub config: serde_json::Value,
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn elem_type_name(t: i32) -> String {
    match pb::tensor_proto::DataType::try_from(t) {
        Ok(pb::tensor_proto::DataType::Float) => "float32".into(),
        Ok(other) => format!("{other:?}").to_lowercase(),
        Err(_) => format!("type {t}"),
    }
}

/// The I/O signature written in an ONNX graph (initializers excluded).
pub fn graph_signature(model: &pb::ModelProto) -> (Vec<TensorSpec>, Vec<TensorSpec>) {
    let Some(g) = &model.graph else { return (vec![], vec![]) };
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let spec = |v: &pb::ValueInfoProto| {
        let (dtype, shape) = match &v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => {
                let shape = t
                    .shape
                    .as_ref()
                    .map(|s| {
                        s.dim
                            .iter()
                            .map(|d| match &d.value {
                                Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => Dim::Fixed(*n as u64),
                                Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Symbol(p.clone()),
                                None => Dim::Symbol("?".into()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (elem_type_name(t.elem_type), shape)
            }
            None => ("untyped".into(), vec![]),
        };
        TensorSpec { name: v.name.clone(), dtype, shape }
    };
    let inputs = g.input.iter().filter(|v| !inits.contains(v.name.as_str())).map(spec).collect();
    let outputs = g.output.iter().map(spec).collect();
    (inputs, outputs)
}

fn describe(specs: &[TensorSpec]) -> String {
    specs
        .iter()
        .map(|s| {
            let dims: Vec<String> = s
                .shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Symbol(p) => p.clone(),
                })
                .collect();
            format!("{} {}[{}]", s.name, s.dtype, dims.join(","))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Manifest {
    /// Reads `dir/model.json` and checks the format; does not look at the ONNX files.
    pub fn read(dir: &Path) -> Result<Manifest, InferError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| InferError::Io { path: path.clone(), source })?;
        Self::parse(&text, &path)
    }

    /// [`read`](Self::read) on text already read from `path` (named in errors, not read).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, InferError> {
        let path = path.to_path_buf();
        let m: Manifest = serde_json::from_str(text).map_err(|e| InferError::Manifest { path: path.clone(), reason: e.to_string() })?;
        if m.format != FORMAT || m.format_version != FORMAT_VERSION {
            return Err(InferError::Manifest { path, reason: format!("format {:?} version {} is not {FORMAT:?} version {FORMAT_VERSION}", m.format, m.format_version) });
        }
        m.check_geometry().map_err(|reason| InferError::Manifest { path, reason })?;
        Ok(m)
    }

    /// The sizes agree with each other and stay in range (the graphs' signatures are checked against
    /// them later, so a consistent manifest is what keeps buffer sizes sane): window 4, 1 or 3
    /// channels, sides of at most [`MAX_SIDE`] pixels that the patch divides, `grid` = sides / patch,
    /// a text width of at most [`MAX_TEXT_DIM`], 1 to [`MAX_MEMBERS`] networks.
    fn check_geometry(&self) -> Result<(), String> {
        let i = &self.image;
        if self.window != 4 {
            return Err(format!("window: {} (the decoder reads 4 frames)", self.window));
        }
        if i.channels != 1 && i.channels != 3 {
            return Err(format!("image.channels: {} (expected 1 or 3)", i.channels));
        }
        for (key, side) in [("image.height", i.height), ("image.width", i.width)] {
            if side == 0 || side > MAX_SIDE {
                return Err(format!("{key}: {side} (expected 1..={MAX_SIDE})"));
            }
            if self.patch == 0 || side % self.patch != 0 {
                return Err(format!("{key}: {side} is not a multiple of patch {}", self.patch));
            }
        }
        let want = [i.height / self.patch, i.width / self.patch];
        if self.grid != want {
            return Err(format!("grid: {:?} but image {}x{} / patch {} is {:?}", self.grid, i.height, i.width, self.patch, want));
        }
        if self.text_dim == 0 || self.text_dim > MAX_TEXT_DIM {
            return Err(format!("text_dim: {} (expected 1..={MAX_TEXT_DIM})", self.text_dim));
        }
        if self.members == 0 || self.members > MAX_MEMBERS {
            return Err(format!("members: {} (expected 1..={MAX_MEMBERS})", self.members));
        }
        Ok(())
    }

    /// Reads the manifest and verifies both ONNX files (sha256, size, I/O signature). Returns the
    /// manifest and the decoded encoder and decoder protos.
    pub fn open(dir: &Path) -> Result<(Manifest, pb::ModelProto, pb::ModelProto), InferError> {
        let m = Self::read(dir)?;
        let enc = m.encoder.verify(dir)?;
        let dec = m.decoder.verify(dir)?;
        Ok((m, enc, dec))
    }

    /// Writes `dir/model.json` (pretty JSON).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, InferError> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).map_err(|e| InferError::Manifest { path: path.clone(), reason: e.to_string() })?;
        // Written last and atomically: a directory with a model.json always has the files it lists.
        sfn_fsio::write_atomic(&path, text.as_bytes()).map_err(|source| InferError::Io { path: path.clone(), source })?;
        Ok(path)
    }

    /// Number of patches per frame.
    pub fn num_patches(&self) -> usize {
        self.grid[0] * self.grid[1]
    }

    /// Values per frame (C * H * W).
    pub fn frame_len(&self) -> usize {
        self.image.channels * self.image.height * self.image.width
    }
}

impl GraphSpec {
    /// Describes the ONNX file `dir/file` as it is on disk (hash, size, signature).
    pub fn describe_file(dir: &Path, file: &str) -> Result<GraphSpec, InferError> {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|source| InferError::Io { path: path.clone(), source })?;
        let proto = pb::ModelProto::decode(&bytes[..]).map_err(|e| InferError::Onnx { path: path.clone(), reason: format!("not an ONNX model: {e}") })?;
        let (inputs, outputs) = graph_signature(&proto);
        Ok(GraphSpec { file: file.into(), sha256: sha256_hex(&bytes), bytes: bytes.len() as u64, inputs, outputs })
    }

    /// Checks the file against this spec; returns its decoded proto.
    pub fn verify(&self, dir: &Path) -> Result<pb::ModelProto, InferError> {
        let path = dir.join(&self.file);
        let bytes = std::fs::read(&path).map_err(|source| InferError::Io { path: path.clone(), source })?;
        let sha = sha256_hex(&bytes);
        if sha != self.sha256 {
            return Err(InferError::Mismatch { path, reason: format!("sha256 is {sha} but model.json says {} ({} bytes on disk, {} in model.json)", self.sha256, bytes.len(), self.bytes) });
        }
        let proto = pb::ModelProto::decode(&bytes[..]).map_err(|e| InferError::Onnx { path: path.clone(), reason: format!("not an ONNX model: {e}") })?;
        let (inputs, outputs) = graph_signature(&proto);
        for (what, want, got) in [("inputs", &self.inputs, &inputs), ("outputs", &self.outputs, &outputs)] {
            if want != got {
                return Err(InferError::Mismatch { path, reason: format!("graph {what} are [{}] but model.json says [{}]", describe(got), describe(want)) });
            }
        }
        Ok(proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export of two networks averaged (the Ped2 model committed before, kept in the fuzz corpus).
    const ENSEMBLE: &str = include_str!("../../fuzz/corpus/model_manifest/ped2-cpu-ensemble.json");

    #[test]
    fn members_default_to_one_and_stay_in_range() {
        let path = Path::new("/x/model.json");
        let m = Manifest::parse(ENSEMBLE, path).unwrap();
        assert_eq!(m.members, 2);
        let mut v: serde_json::Value = serde_json::from_str(ENSEMBLE).unwrap();
        v.as_object_mut().unwrap().remove("members");
        assert_eq!(Manifest::parse(&v.to_string(), path).unwrap().members, 1, "a manifest without `members` is one network");
        for bad in [0, MAX_MEMBERS + 1] {
            v["members"] = bad.into();
            let e = Manifest::parse(&v.to_string(), path).unwrap_err().to_string();
            assert!(e.contains("/x/model.json") && e.contains(&format!("members: {bad}")), "{e}");
        }
        // One network's manifest is written without the field, as before ensembles existed.
        v["members"] = 1.into();
        let one = Manifest::parse(&v.to_string(), path).unwrap();
        assert!(serde_json::to_value(&one).unwrap().get("members").is_none());
    }
}
