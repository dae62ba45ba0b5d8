//! ONNX Runtime back-end through `ort` with `load-dynamic`: the library is opened at run time
//! (`OrtOptions::library` or `ORT_DYLIB_PATH`), so builds need no native ONNX Runtime.
//!
//! Execution providers: CPU always; CUDA and TensorRT with the crate features `cuda` / `tensorrt`
//! and a GPU build of the library (JetPack's). TensorRT keeps its engines in `trt_cache` (persistent:
//! the first engine build takes minutes on an Orin) and takes fp16 / int8 flags.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use crate::onnxruntime_options::{OrtOptions, Provider};
use crate::{Array, InferError, Runner};

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
fn environment(library: Option<&Path>) -> Result<ort::environment::Environment, InferError> {
    let res = ENV.get_or_init(|| {
        let path: PathBuf = match library.map(Path::to_path_buf).or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from)) {
            Some(p) => p,
            None => return Err("no library given and ORT_DYLIB_PATH is not set (point it at libonnxruntime.so)".into()),
        };
        if !path.exists() {
            return Err(format!("{}: no such file", path.display()));
        }
        ort::init_from(&path).map_err(|e| format!("{}: {e}", path.display()))?.with_name("sfn-vad").build().map_err(|e| format!("{}: {e}", path.display()))
    });
    res.clone().map_err(|reason| InferError::Backend { backend: "onnxruntime".into(), reason })
}

/// One ONNX Runtime session.
pub struct OrtRunner {
    path: PathBuf,
    session: Session,
    inputs: Vec<String>,
    provider: Provider,
}

impl OrtRunner {
    /// Opens `path` with the given options.
    pub fn open(path: &Path, opts: &OrtOptions) -> Result<Self, InferError> {
        let env = environment(opts.library.as_deref())?;
        let err = |e: ort::Error| InferError::Onnx { path: path.into(), reason: format!("onnxruntime: {e}") };
        let mut builder = Session::builder(&env).map_err(err)?.with_intra_threads(opts.threads.max(1)).map_err(|e| err(e.into()))?;
        #[allow(unused_mut)]
        let mut eps = Vec::new();
        match opts.provider {
            Provider::Cpu => {}
            #[cfg(feature = "tensorrt")]
            Provider::TensorRt => {
                let mut trt = ort::ep::TensorRT::default().with_fp16(opts.trt_fp16).with_int8(opts.trt_int8);
                if let Some(cache) = &opts.trt_cache {
                    std::fs::create_dir_all(cache).map_err(|source| InferError::Io { path: cache.clone(), source })?;
                    trt = trt.with_engine_cache(true).with_engine_cache_path(cache.display()).with_timing_cache(true).with_timing_cache_path(cache.display());
                }
                let trt = trt.build();
                eps.push(if opts.strict { trt.error_on_failure() } else { trt });
                #[cfg(feature = "cuda")]
                eps.push(ort::ep::CUDA::default().build());
            }
            #[cfg(feature = "cuda")]
            Provider::Cuda => {
                let cuda = ort::ep::CUDA::default().build();
                eps.push(if opts.strict { cuda.error_on_failure() } else { cuda });
            }
            #[allow(unreachable_patterns)]
            ref other => {
                return Err(InferError::Backend { backend: format!("onnxruntime-{other:?}"), reason: "this build lacks the cargo feature for that execution provider (`cuda` / `tensorrt`)".into() })
            }
        }
        if !eps.is_empty() {
            builder = builder.with_execution_providers(eps).map_err(|e| err(e.into()))?;
        }
        let session = builder.commit_from_file(path).map_err(err)?;
        let inputs = session.inputs().iter().map(|o| o.name().to_string()).collect();
        Ok(OrtRunner { path: path.into(), session, inputs, provider: opts.provider.clone() })
    }
}

impl Runner for OrtRunner {
    fn backend(&self) -> String {
        format!(
            "onnxruntime-{}",
            match self.provider {
                Provider::Cpu => "cpu",
                Provider::Cuda => "cuda",
                Provider::TensorRt => "tensorrt",
            }
        )
    }

    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        let graph = self.path.display().to_string();
        let run_err = |e: ort::Error| InferError::Run { backend: "onnxruntime", graph: graph.clone(), reason: e.to_string() };
        let mut values: Vec<(std::borrow::Cow<'_, str>, SessionInputValue<'_>)> = Vec::new();
        for name in &self.inputs {
            let (_, shape, data) = inputs.iter().find(|(n, _, _)| n == name).ok_or_else(|| InferError::Input { name: name.clone(), reason: format!("not given (graph {graph} needs it)") })?;
            let t = TensorRef::from_array_view((shape.to_vec(), *data)).map_err(|e| InferError::Input { name: name.clone(), reason: e.to_string() })?;
            values.push((name.clone().into(), t.into()));
        }
        let outputs = self.session.run(values).map_err(run_err)?;
        let mut res = Vec::new();
        for (_, v) in outputs.iter() {
            let (shape, data) = v.try_extract_tensor::<f32>().map_err(run_err)?;
            res.push(Array { shape: shape.iter().map(|&d| d as usize).collect(), data: data.to_vec() });
        }
        Ok(res)
    }
}
