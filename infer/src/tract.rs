//! tract back-end: pure Rust, CPU, single-threaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::{Array, InferError, Runner};

/// One optimised tract plan (the batch dimension stays symbolic), shared by the runners of several
/// threads.
#[derive(Clone)]
pub struct TractRunner {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<String>,
}

impl TractRunner {
    /// Loads an ONNX file.
    pub fn open(path: &Path) -> Result<Self, InferError> {
        let bytes = std::fs::read(path).map_err(|source| InferError::Io { path: path.into(), source })?;
        let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| InferError::Onnx { path: path.into(), reason: format!("{e:#}") })?;
        Self::from_proto(proto, path)
    }

    /// Builds the plan from an already decoded proto (`path` is for messages).
    pub fn from_proto(proto: pb::ModelProto, path: &Path) -> Result<Self, InferError> {
        let err = |e: TractError| InferError::Onnx { path: path.into(), reason: format!("tract: {e:#}") };
        let model = tract_onnx::onnx().model_for_proto_model(&proto).map_err(err)?;
        let inputs = model.input_outlets().map_err(err)?.iter().map(|o| model.node(o.node).name.clone()).collect();
        let plan = model.into_optimized().map_err(err)?.into_runnable().map_err(err)?;
        Ok(TractRunner { path: path.into(), plan, inputs })
    }
}

impl Runner for TractRunner {
    fn backend(&self) -> String {
        "tract".into()
    }

    fn share(&self) -> Option<Box<dyn Runner>> {
        Some(Box::new(self.clone()))
    }

    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        let graph = self.path.display().to_string();
        let mut ordered: TVec<TValue> = tvec![];
        for name in &self.inputs {
            let (_, shape, data) = inputs.iter().find(|(n, _, _)| n == name).ok_or_else(|| InferError::Input { name: name.clone(), reason: format!("not given (graph {graph} needs it)") })?;
            let t = Tensor::from_shape(shape, data).map_err(|e| InferError::Input { name: name.clone(), reason: format!("{e:#}") })?;
            ordered.push(t.into());
        }
        let out = self.plan.run(ordered).map_err(|e| InferError::Run { backend: "tract", graph: graph.clone(), reason: format!("{e:#}") })?;
        out.into_iter()
            .map(|v| {
                let view = v.to_plain_array_view::<f32>().map_err(|e| InferError::Run { backend: "tract", graph: graph.clone(), reason: format!("{e:#}") })?;
                Ok(Array { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
            })
            .collect()
    }
}
