//! tract back-end: pure Rust, CPU, single-threaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::{Array, InferError, Runner};

/// Largest batch that gets a plan of its own (with every shape concrete); larger ones run the
/// symbolic plan.
pub const MAX_CONCRETE_BATCH: usize = 16;

/// Optimised tract plans of one graph, shared by the runners of several threads: one for batch 1
/// with every shape concrete (what a camera runs: tract folds the shapes and picks its kernels for
/// them), one per other batch size up to [`MAX_CONCRETE_BATCH`] (what batched cameras run), and one
/// with the batch dimension symbolic for larger batches; all but the first built on first use.
#[derive(Clone)]
pub struct TractRunner {
    path: PathBuf,
    one: Arc<TypedRunnableModel>,
    by_batch: Arc<Mutex<BTreeMap<usize, Arc<TypedRunnableModel>>>>,
    any: Arc<OnceLock<Result<Arc<TypedRunnableModel>, String>>>,
    proto: Arc<pb::ModelProto>,
    inputs: Vec<String>,
}

impl TractRunner {
    /// Loads an ONNX file.
    pub fn open(path: &Path) -> Result<Self, InferError> {
        let bytes = std::fs::read(path).map_err(|source| InferError::Io { path: path.into(), source })?;
        let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| InferError::Onnx { path: path.into(), reason: format!("{e:#}") })?;
        Self::from_proto(proto, path)
    }

    /// Builds the batch-1 plan from an already decoded proto (`path` is for messages).
    pub fn from_proto(proto: pb::ModelProto, path: &Path) -> Result<Self, InferError> {
        let err = |e: TractError| InferError::Onnx { path: path.into(), reason: format!("tract: {e:#}") };
        let (one, inputs) = build_plan(&proto, Some(1)).map_err(err)?;
        Ok(TractRunner { path: path.into(), one, by_batch: Arc::default(), any: Arc::default(), proto: Arc::new(proto), inputs })
    }

    fn run_plan(&self, plan: &Arc<TypedRunnableModel>, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        let graph = self.path.display().to_string();
        let mut ordered: TVec<TValue> = tvec![];
        for name in &self.inputs {
            let (_, shape, data) = inputs.iter().find(|(n, _, _)| n == name).ok_or_else(|| InferError::Input { name: name.clone(), reason: format!("not given (graph {graph} needs it)") })?;
            let t = Tensor::from_shape(shape, data).map_err(|e| InferError::Input { name: name.clone(), reason: format!("{e:#}") })?;
            ordered.push(t.into());
        }
        let out = plan.run(ordered).map_err(|e| InferError::Run { backend: "tract", graph: graph.clone(), reason: format!("{e:#}") })?;
        out.into_iter()
            .map(|v| {
                let view = v.to_plain_array_view::<f32>().map_err(|e| InferError::Run { backend: "tract", graph: graph.clone(), reason: format!("{e:#}") })?;
                Ok(Array { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
            })
            .collect()
    }

    /// The concrete plan for `batch` (2..=[`MAX_CONCRETE_BATCH`]), built on its first use.
    fn batch_plan(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, InferError> {
        let mut plans = self.by_batch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(&batch) {
            return Ok(p.clone());
        }
        tracing::info!(graph = %self.path.display(), batch, "building tract's plan for this batch size");
        let plan = self.concrete_plan(batch)?;
        plans.insert(batch, plan.clone());
        Ok(plan)
    }

    /// The plan for any batch size (symbolic), built once.
    fn any_batch(&self) -> Result<Arc<TypedRunnableModel>, InferError> {
        let built = self.any.get_or_init(|| build_plan(&self.proto, None).map(|(plan, _)| plan).map_err(|e| format!("{e:#}")));
        built.clone().map_err(|reason| InferError::Onnx { path: self.path.clone(), reason: format!("tract (any batch): {reason}") })
    }
}

impl TractRunner {
    /// A plan with every shape concrete at batch `batch` (to measure what batching buys).
    pub fn concrete_plan(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, InferError> {
        build_plan(&self.proto, Some(batch)).map(|(plan, _)| plan).map_err(|e| InferError::Onnx { path: self.path.clone(), reason: format!("tract: {e:#}") })
    }

    /// Deterministic inputs of the graph at batch `batch` (values in [0, 1); the text mask 0, as a
    /// camera without captions runs), for timing and comparisons.
    pub fn sample_inputs(&self, batch: usize) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        self.inputs
            .iter()
            .filter_map(|n| graph_input_shape(&self.proto, n, batch).map(|s| (n.clone(), s)))
            .map(|(n, s)| {
                let len = s.iter().product();
                let v = if n == "text_mask" { vec![0.0; len] } else { (0..len).map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 1000.0).collect() };
                (n, s, v)
            })
            .collect()
    }

    /// Runs `inputs` on `plan` (one from [`TractRunner::concrete_plan`] or [`TractRunner::plan`]).
    pub fn run_on(&self, plan: &Arc<TypedRunnableModel>, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        self.run_plan(plan, inputs)
    }

    /// The batch-1 plan (for profiling).
    pub fn plan(&self) -> Arc<TypedRunnableModel> {
        self.one.clone()
    }

    /// Runs `inputs` on the symbolic-batch plan even at batch 1 (to compare it with the batch-1 plan).
    pub fn run_any_batch(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        let plan = self.any_batch()?;
        self.run_plan(&plan, inputs)
    }
}

/// The optimised plan of `proto` and its input names: with `batch`, every input's shape from the
/// graph with the symbolic (batch) dimension set to it; without, the batch left symbolic.
fn build_plan(proto: &pb::ModelProto, batch: Option<usize>) -> TractResult<(Arc<TypedRunnableModel>, Vec<String>)> {
    let mut model = tract_onnx::onnx().model_for_proto_model(proto)?;
    let inputs: Vec<String> = model.input_outlets()?.iter().map(|o| model.node(o.node).name.clone()).collect();
    if let Some(b) = batch {
        for (ix, name) in inputs.iter().enumerate() {
            if let Some(shape) = graph_input_shape(proto, name, b) {
                model.set_input_fact(ix, f32::fact(shape).into())?;
            }
        }
    }
    Ok((model.into_optimized()?.into_runnable()?, inputs))
}

/// Whether `SFN_TRACT_SYMBOLIC=1` asks for the symbolic plan at every batch size (read once).
fn symbolic_only() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| std::env::var("SFN_TRACT_SYMBOLIC").is_ok_and(|v| v == "1"))
}

/// The shape of graph input `name` with every named (symbolic) dimension set to `batch`; None when
/// the graph does not give one.
fn graph_input_shape(proto: &pb::ModelProto, name: &str, batch: usize) -> Option<Vec<usize>> {
    let input = proto.graph.as_ref()?.input.iter().find(|i| i.name == name)?;
    let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_ref()?.value.as_ref() else { return None };
    let dims = &t.shape.as_ref()?.dim;
    dims.iter()
        .map(|d| match &d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v > 0 => Some(*v as usize),
            Some(pb::tensor_shape_proto::dimension::Value::DimParam(_)) => Some(batch),
            _ => None,
        })
        .collect()
}

impl Runner for TractRunner {
    fn backend(&self) -> String {
        "tract".into()
    }

    fn share(&self) -> Option<Box<dyn Runner>> {
        Some(Box::new(self.clone()))
    }

    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        // SFN_TRACT_SYMBOLIC=1: every call on the symbolic plan (what ran before the concrete plans
        // existed; the replay bench's "before" row).
        let batch = inputs.first().and_then(|(_, shape, _)| shape.first().copied()).unwrap_or(0);
        let same = inputs.iter().all(|(_, shape, _)| shape.first() == Some(&batch));
        let plan = match batch {
            _ if symbolic_only() || !same => self.any_batch()?,
            1 => self.one.clone(),
            2..=MAX_CONCRETE_BATCH => self.batch_plan(batch)?,
            _ => self.any_batch()?,
        };
        self.run_plan(&plan, inputs)
    }
}
