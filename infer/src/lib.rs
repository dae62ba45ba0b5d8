//! Running an exported SFN-VAD: `model.json` + `encoder.onnx` + `decoder.onnx` (see [`manifest`]).
//!
//! Two back-ends behind one [`Runner`] trait:
//! - [`tract`]: pure Rust, CPU, the default (no native library needed);
//! - [`onnxruntime`] (feature `ort`): ONNX Runtime loaded at run time from `libonnxruntime.so`
//!   (`ORT_DYLIB_PATH`), with the CUDA and TensorRT execution providers behind the features `cuda` and
//!   `tensorrt` (Jetson).
//!
//! [`ExportedModel`] wraps the two graphs with typed calls: [`ExportedModel::encode`] for one frame (and its
//! difference to the previous frame), [`ExportedModel::decode`] for a window of cached encodings.

pub mod batch;
pub mod manifest;
#[cfg(feature = "ort")]
pub mod onnxruntime;
pub mod preprocess;
pub mod tract;

use std::path::{Path, PathBuf};

use manifest::names;
pub use manifest::{Manifest, Precision};
use tract_onnx::pb;

/// Errors of loading and running an exported model; each names the file or input concerned.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid model.json: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Onnx { path: PathBuf, reason: String },
    #[error("input `{name}`: {reason}")]
    Input { name: String, reason: String },
    #[error("{backend} failed on {graph}: {reason}")]
    Run { backend: &'static str, graph: String, reason: String },
    #[error("back-end {backend} unavailable: {reason}")]
    Backend { backend: String, reason: String },
}

/// A dense f32 tensor in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, InferError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(InferError::Input { name: "array".into(), reason: format!("shape {shape:?} needs {n} values, got {}", data.len()) });
        }
        Ok(Array { shape, data })
    }
}

/// One graph, ready to run: named f32 inputs in the graph's input order -> outputs in its output order.
pub trait Runner: Send {
    /// Back-end name for reports ("tract", "onnxruntime-cpu", ...).
    fn backend(&self) -> String;
    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError>;
    /// Another runner of the same loaded graph, for another thread (`None`: this back-end loads a
    /// graph per runner).
    fn share(&self) -> Option<Box<dyn Runner>> {
        None
    }
    /// The counters of the batcher behind this runner ([`batch::BatchedRunner`]; `None` for a plain one).
    fn batch_stats(&self) -> Option<std::sync::Arc<batch::BatchStats>> {
        None
    }
}

/// Which back-end runs the graphs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// tract, single-threaded, CPU.
    Tract,
    /// ONNX Runtime with the given execution provider (needs the `ort` feature).
    OnnxRuntime(onnxruntime_options::OrtOptions),
}

/// Options of the ONNX Runtime back-end, available in every build so configs parse everywhere.
pub mod onnxruntime_options {
    use std::path::PathBuf;

    /// Execution provider.
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Provider {
        Cpu,
        Cuda,
        /// TensorRT; falls back to CUDA then CPU for unsupported nodes.
        TensorRt,
    }

    /// How to create ONNX Runtime sessions.
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct OrtOptions {
        pub provider: Provider,
        /// Intra-op threads (1 = one core).
        pub threads: usize,
        /// `libonnxruntime.so`; default: `ORT_DYLIB_PATH`.
        pub library: Option<PathBuf>,
        /// TensorRT engine cache directory (persistent: the first build takes minutes on a Jetson).
        pub trt_cache: Option<PathBuf>,
        pub trt_fp16: bool,
        /// TensorRT int8 (use with the QDQ export; a calibration table cannot be combined with QDQ).
        pub trt_int8: bool,
        /// Fail instead of falling back to the CPU when the provider cannot be registered.
        pub strict: bool,
    }

    impl Default for OrtOptions {
        fn default() -> Self {
            OrtOptions { provider: Provider::Cpu, threads: 1, library: None, trt_cache: None, trt_fp16: false, trt_int8: false, strict: true }
        }
    }

    /// Whether ONNX Runtime's int8 kernels on this CPU add pairs of u8 x s8 products in saturating
    /// 16-bit sums: x86-64 without an int8 dot-product instruction (AVX-512 VNNI or AVX-VNNI). Int8
    /// weights in the full [-127, 127] range then lose accuracy there (exports with the reduced range,
    /// [-63, 63], do not).
    pub fn int8_pairs_saturate() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            !(std::arch::is_x86_feature_detected!("avx512vnni") || std::arch::is_x86_feature_detected!("avxvnni"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Encodings of a batch of frames: what the device caches per frame.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// [B, Np, d_a]
    pub tokens: Array,
    /// [B, Np, d_a]
    pub patch_embed: Array,
    /// [B, 1 + Np, d_m]
    pub motion: Array,
}

/// Decoder outputs.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Predicted frame t+1 [B, C, H, W].
    pub frame: Array,
    /// Predicted text feature [B, text_dim].
    pub text: Array,
}

/// Why an export may score worse on `backend` than it was measured, where it may: full-range static
/// int8 weights on ONNX Runtime's CPU provider on a CPU whose int8 kernels `saturate` 16-bit pair
/// sums ([`onnxruntime_options::int8_pairs_saturate`]).
pub fn int8_saturation_warning(manifest: &Manifest, backend: &BackendKind, saturate: bool) -> Option<String> {
    let full_range = manifest.precision == Precision::Int8Qdq && manifest.quantization.as_ref().is_some_and(|q| q.weight_max > 63);
    let ort_cpu = matches!(backend, BackendKind::OnnxRuntime(o) if o.provider == onnxruntime_options::Provider::Cpu);
    (full_range && ort_cpu && saturate).then(|| {
        "int8 weights in [-127, 127] on ONNX Runtime on a CPU without VNNI, whose int8 kernels saturate 16-bit pair sums: check this export's AUCs on this CPU, or use an export made with --int8-reduce-range, the fp32 export or tract".into()
    })
}

/// An exported model, verified against its manifest and loaded on a back-end.
pub struct ExportedModel {
    pub dir: PathBuf,
    pub manifest: Manifest,
    encoder: Box<dyn Runner>,
    decoder: Box<dyn Runner>,
    /// `appearance.onnx`, where the export has one.
    appearance: Option<Box<dyn Runner>>,
}

impl ExportedModel {
    /// Verifies `dir/model.json` and its ONNX files, then loads the graphs on `backend`.
    pub fn open(dir: &Path, backend: &BackendKind) -> Result<Self, InferError> {
        let (manifest, enc, dec) = Manifest::open(dir)?;
        if let Some(why) = int8_saturation_warning(&manifest, backend, onnxruntime_options::int8_pairs_saturate()) {
            tracing::warn!("{}: {why}", dir.display());
        }
        let app = manifest.appearance.as_ref().map(|g| g.verify(dir)).transpose()?;
        let load = |proto: pb::ModelProto, file: &str| -> Result<Box<dyn Runner>, InferError> {
            let path = dir.join(file);
            match backend {
                BackendKind::Tract => Ok(Box::new(tract::TractRunner::from_proto(proto, &path)?)),
                #[cfg(feature = "ort")]
                BackendKind::OnnxRuntime(opts) => {
                    drop(proto);
                    Ok(Box::new(onnxruntime::OrtRunner::open(&path, opts)?))
                }
                #[cfg(not(feature = "ort"))]
                BackendKind::OnnxRuntime(_) => {
                    drop(proto);
                    Err(InferError::Backend { backend: "onnxruntime".into(), reason: "this build has no `ort` feature".into() })
                }
            }
        };
        let encoder = load(enc, &manifest.encoder.file)?;
        let decoder = load(dec, &manifest.decoder.file)?;
        let appearance = match (app, &manifest.appearance) {
            (Some(proto), Some(g)) => Some(load(proto, &g.file)?),
            _ => None,
        };
        Ok(ExportedModel { dir: dir.into(), manifest, encoder, decoder, appearance })
    }

    /// Back-end name.
    pub fn backend(&self) -> String {
        self.encoder.backend()
    }

    /// The same loaded graphs for another thread (several cameras, one copy of the weights), where the
    /// back-end can share them (tract's optimised plans can; `None` otherwise: open the export again).
    pub fn share(&self) -> Option<ExportedModel> {
        let appearance = match &self.appearance {
            Some(a) => Some(a.share()?),
            None => None,
        };
        Some(ExportedModel { dir: self.dir.clone(), manifest: self.manifest.clone(), encoder: self.encoder.share()?, decoder: self.decoder.share()?, appearance })
    }

    /// The same graphs behind two batcher threads ([`batch::BatchedRunner`]): the calls of this
    /// model's shares ([`ExportedModel::share`], one per camera) that are ready together run as one
    /// batch. Every back-end can be shared this way (one loaded copy, ONNX Runtime's included). The
    /// appearance graph is shared one call at a time instead ([`batch::Serialized`]): a camera calls it
    /// only on frames where something moves, so a batcher would wait out its deadline for the still ones.
    pub fn batched(self, opts: batch::BatchOptions) -> Result<ExportedModel, InferError> {
        let encoder = batch::BatchedRunner::spawn(self.encoder, opts)?;
        let decoder = batch::BatchedRunner::spawn(self.decoder, opts)?;
        let appearance = self.appearance.map(|a| Box::new(batch::Serialized::new(a)) as Box<dyn Runner>);
        Ok(ExportedModel { dir: self.dir, manifest: self.manifest, encoder: Box::new(encoder), decoder: Box::new(decoder), appearance })
    }

    /// The encoder's and the decoder's batcher counters (`None` unless [`ExportedModel::batched`]).
    pub fn batch_stats(&self) -> Option<[std::sync::Arc<batch::BatchStats>; 2]> {
        Some([self.encoder.batch_stats()?, self.decoder.batch_stats()?])
    }

    fn check(&self, name: &str, data: &[f32], batch: usize, per_sample: usize) -> Result<(), InferError> {
        if data.len() != batch * per_sample {
            return Err(InferError::Input { name: name.into(), reason: format!("{} values, expected batch {batch} x {per_sample}", data.len()) });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(InferError::Input { name: name.into(), reason: format!("value {i} is {} (not finite)", data[i]) });
        }
        Ok(())
    }

    /// Encodes `batch` frames (normalised CHW, concatenated) with the frames before them.
    pub fn encode(&mut self, frames: &[f32], prev_frames: &[f32], batch: usize) -> Result<Encoded, InferError> {
        let i = &self.manifest.image;
        let shape = [batch, i.channels, i.height, i.width];
        self.check(names::FRAME, frames, batch, self.manifest.frame_len())?;
        self.check(names::PREV_FRAME, prev_frames, batch, self.manifest.frame_len())?;
        let mut out = self.encoder.run(&[(names::FRAME, &shape, frames), (names::PREV_FRAME, &shape, prev_frames)])?.into_iter();
        let (Some(tokens), Some(patch_embed), Some(motion)) = (out.next(), out.next(), out.next()) else {
            return Err(InferError::Run { backend: "encoder", graph: self.manifest.encoder.file.clone(), reason: "fewer than 3 outputs".into() });
        };
        Ok(Encoded { tokens, patch_embed, motion })
    }

    /// Decodes `batch` windows. `frame_tokens` [B,4,Np,d_a], `skip` [B,Np,d_a], `motion` [B,3,1+Np,d_m],
    /// `text` [B,text_dim] with `text_mask` [B] (1 = use it), `last_frame` [B,C,H,W], and `prev_frame`
    /// (frame t-1) [B,C,H,W] for a decoder whose frame head has a pixel stem (ignored otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn decode(&mut self, frame_tokens: &[f32], skip: &[f32], motion: &[f32], text: Option<&[f32]>, last_frame: &[f32], prev_frame: Option<&[f32]>, batch: usize) -> Result<Decoded, InferError> {
        let m = &self.manifest;
        let specs = &m.decoder.inputs;
        let shape_of = |name: &str| -> Vec<usize> {
            let mut s = vec![batch];
            s.extend(specs.iter().find(|t| t.name == name).map(|t| t.per_sample()).unwrap_or_default());
            s
        };
        let zeros;
        let (text, mask) = match text {
            Some(t) => (t, vec![1f32; batch]),
            None => {
                zeros = vec![0f32; batch * m.text_dim];
                (&zeros[..], vec![0f32; batch])
            }
        };
        let mut data: Vec<(&str, &[f32])> =
            vec![(names::FRAME_TOKENS, frame_tokens), (names::SKIP, skip), (names::MOTIONS, motion), (names::TEXT, text), (names::TEXT_MASK, &mask), (names::LAST_FRAME, last_frame)];
        if specs.iter().any(|t| t.name == names::PREV_FRAME) {
            let prev = prev_frame.ok_or_else(|| InferError::Input { name: names::PREV_FRAME.into(), reason: "this decoder reads frame t-1 (its frame head has a pixel stem); none given".into() })?;
            data.push((names::PREV_FRAME, prev));
        }
        let shapes: Vec<Vec<usize>> = data.iter().map(|(n, _)| shape_of(n)).collect();
        for ((name, d), s) in data.iter().zip(&shapes) {
            self.check(name, d, batch, s[1..].iter().product())?;
        }
        let inputs: Vec<(&str, &[usize], &[f32])> = data.iter().zip(&shapes).map(|((n, d), s)| (*n, &s[..], *d)).collect();
        let mut out = self.decoder.run(&inputs)?.into_iter();
        let (Some(frame), Some(text)) = (out.next(), out.next()) else {
            return Err(InferError::Run { backend: "decoder", graph: self.manifest.decoder.file.clone(), reason: "fewer than 2 outputs".into() });
        };
        Ok(Decoded { frame, text })
    }

    /// Whether the export has the appearance cue's graph.
    pub fn has_appearance(&self) -> bool {
        self.appearance.is_some()
    }

    /// Each of `n` moving-box descriptors' reconstruction error through `appearance.onnx`
    /// (`boxes`: [n, D] concatenated); no call for `n` = 0.
    pub fn appearance_errors(&mut self, boxes: &[f32], n: usize) -> Result<Vec<f32>, InferError> {
        let spec = self.manifest.appearance.as_ref().ok_or_else(|| InferError::Input { name: names::BOXES.into(), reason: "this export has no appearance.onnx".into() })?;
        let d = spec.inputs.iter().find(|t| t.name == names::BOXES).map(|t| t.sample_len()).unwrap_or(0);
        let file = spec.file.clone();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.check(names::BOXES, boxes, n, d)?;
        let runner = self.appearance.as_mut().ok_or_else(|| InferError::Input { name: names::BOXES.into(), reason: "appearance.onnx is not loaded".into() })?;
        let out = runner.run(&[(names::BOXES, &[n, d], boxes)])?;
        match out.into_iter().next() {
            Some(a) if a.data.len() == n => Ok(a.data),
            Some(a) => Err(InferError::Run { backend: "appearance", graph: file, reason: format!("{} errors for {n} boxes", a.data.len()) }),
            None => Err(InferError::Run { backend: "appearance", graph: file, reason: "no output".into() }),
        }
    }
}
