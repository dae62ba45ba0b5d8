//! tract back-end: pure Rust, CPU, single-threaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::{Array, InferError, Runner};

/// Optimised tract plans of one graph, shared by the runners of several threads: one for batch 1
/// with every shape concrete (what a camera runs: tract folds the shapes and picks its kernels for
/// them), and one with the batch dimension symbolic for other batch sizes, built on first use.
#[derive(Clone)]
pub struct TractRunner {
    path: PathBuf,
    one: Arc<TypedRunnableModel>,
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
        let mut model = tract_onnx::onnx().model_for_proto_model(&proto).map_err(err)?;
        let inputs: Vec<String> = model.input_outlets().map_err(err)?.iter().map(|o| model.node(o.node).name.clone()).collect();
        // Every input's shape from the graph, the symbolic (batch) dimension set to 1.
        for (ix, name) in inputs.iter().enumerate() {
            let Some(shape) = graph_input_shape(&proto, name, 1) else { continue };
            model.set_input_fact(ix, f32::fact(shape).into()).map_err(err)?;
        }
        let one = model.into_optimized().map_err(err)?.into_runnable().map_err(err)?;
        Ok(TractRunner { path: path.into(), one, any: Arc::default(), proto: Arc::new(proto), inputs })
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

    /// The plan for any batch size (symbolic), built once.
    fn any_batch(&self) -> Result<Arc<TypedRunnableModel>, InferError> {
        let built = self.any.get_or_init(|| {
            let model = tract_onnx::onnx().model_for_proto_model(&self.proto).map_err(|e| format!("{e:#}"))?;
            model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| format!("{e:#}"))
        });
        built.clone().map_err(|reason| InferError::Onnx { path: self.path.clone(), reason: format!("tract (any batch): {reason}") })
    }
}

impl TractRunner {
    /// The inputs of the graph with their batch-1 shapes (for timing and tests).
    pub fn input_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.inputs.iter().filter_map(|n| graph_input_shape(&self.proto, n, 1).map(|s| (n.clone(), s))).collect()
    }

    /// A plan with every shape concrete at batch `batch` (to measure what batching buys).
    pub fn concrete_plan(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, InferError> {
        let err = |e: TractError| InferError::Onnx { path: self.path.clone(), reason: format!("tract: {e:#}") };
        let mut model = tract_onnx::onnx().model_for_proto_model(&self.proto).map_err(err)?;
        for (ix, name) in self.inputs.iter().enumerate() {
            if let Some(shape) = graph_input_shape(&self.proto, name, batch) {
                model.set_input_fact(ix, f32::fact(shape).into()).map_err(err)?;
            }
        }
        model.into_optimized().map_err(err)?.into_runnable().map_err(err)
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
        // SFN_TRACT_SYMBOLIC=1: every call on the symbolic plan (what ran before the batch-1 plan
        // existed; the replay bench's "before" row).
        let batch_one = !symbolic_only() && inputs.iter().all(|(_, shape, _)| shape.first() == Some(&1));
        let plan = if batch_one { self.one.clone() } else { self.any_batch()? };
        self.run_plan(&plan, inputs)
    }
}
