//! A small ONNX graph writer on the protobuf types of `tract-onnx` (prost): nodes, initializers, typed
//! inputs/outputs, and the three numeric forms of a weight-bearing op (fp32, QDQ int8, weight-only int8).
//!
//! Quantisation (symmetric, zero point 0, int8 range [-127, 127]):
//! - weights per output channel: s_c = max_i |W_ci| / 127, q = round_half_even(W / s_c) (or, for
//!   static int8 with a reduced range, / 63 into [-63, 63]: ONNX Runtime's x86 int8 kernels without
//!   VNNI add pairs of u8 x s8 products in 16 bits, and 2 * 255 * 63 < 2^15 cannot saturate);
//! - activations per tensor: s = max |x| / 127 over the calibration windows, as QuantizeLinear ->
//!   DequantizeLinear on the op's input (the form TensorRT's explicit quantisation and ONNX Runtime's
//!   QDQ fusion accept).
//!
//! Every weight-bearing op is a *site* named after its weights (`decoder.layers.0.block.attn.qkv`);
//! calibration measures each site's input range under that name, so fp32 and int8 builds line up.

use std::collections::{BTreeMap, HashMap};

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

/// Operator set of the exported graphs.
pub const OPSET: i64 = 17;
/// ONNX IR version (8 = ONNX 1.10+, readable by every runtime we target).
pub const IR_VERSION: i64 = 8;

/// How weight-bearing ops are written.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Fp32,
    /// QDQ int8 with these per-site activation scales (a site missing from the map stays fp32), weights
    /// in [-weight_max, weight_max] ([`QMAX`] or [`QMAX_REDUCED`]).
    Int8Static {
        scales: BTreeMap<String, f32>,
        weight_max: f32,
    },
    Int8WeightOnly,
}

impl Mode {
    /// The int8 weights' integer range, [-weight_max, weight_max] ([`QMAX`] but where reduced).
    pub fn weight_max(&self) -> f32 {
        match self {
            Mode::Int8Static { weight_max, .. } => *weight_max,
            _ => QMAX,
        }
    }
}

/// Integer range of the symmetric int8 quantisation.
pub const QMAX: f32 = 127.0;
/// The reduced (7-bit) range of int8 weights, for ONNX Runtime on x86 CPUs without VNNI.
pub const QMAX_REDUCED: f32 = 63.0;

/// Symmetric per-channel int8 quantisation of `w` laid out with `channels` along `axis` of `dims`, into
/// [-qmax, qmax]. Returns (q, scales); a channel of zeros gets scale 1.
pub fn quantize_per_channel(w: &[f32], dims: &[usize], axis: usize, qmax: f32) -> (Vec<i8>, Vec<f32>) {
    let channels = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut maxabs = vec![0f32; channels];
    for (i, v) in w.iter().enumerate() {
        let c = (i / inner) % channels;
        maxabs[c] = maxabs[c].max(v.abs());
    }
    let scales: Vec<f32> = maxabs.iter().map(|&m| if m > 0.0 { m / qmax } else { 1.0 }).collect();
    let q = w.iter().enumerate().map(|(i, v)| (v / scales[(i / inner) % channels]).round_ties_even().clamp(-qmax, qmax) as i8).collect();
    (q, scales)
}

/// Graph under construction.
pub struct GraphBuilder {
    name: String,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    next: usize,
    mode: Mode,
    consts: HashMap<String, String>,
    qdq: HashMap<String, String>,
    sites: Vec<(String, String)>,
    quantized_weights: usize,
    quantized_activations: usize,
    unquantized_sites: Vec<String>,
    /// Prepended to every site name (an ensemble member's sites are its own).
    site_prefix: String,
}

/// An attribute.
pub fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}
pub fn attr_f(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}
pub fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}
pub fn attr_s(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: v.as_bytes().to_vec(), ..Default::default() }
}
pub fn attr_t(name: &str, t: pb::TensorProto) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() }
}

/// A float32 tensor value info with `dims` (None = the symbolic batch).
pub fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => Value::DimValue(*n as i64),
                None => Value::DimParam(sfn_infer::manifest::BATCH.into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor { elem_type: DataType::Float as i32, shape: Some(pb::TensorShapeProto { dim }) })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new(name: &str, mode: Mode) -> Self {
        GraphBuilder {
            name: name.into(),
            nodes: vec![],
            inits: vec![],
            inputs: vec![],
            outputs: vec![],
            next: 0,
            mode,
            consts: HashMap::new(),
            qdq: HashMap::new(),
            sites: vec![],
            quantized_weights: 0,
            quantized_activations: 0,
            unquantized_sites: vec![],
            site_prefix: String::new(),
        }
    }

    /// Names the sites built from now on `prefix` + site (calibration scales are looked up so).
    pub fn set_site_prefix(&mut self, prefix: &str) {
        self.site_prefix = prefix.into();
    }

    /// A new unique tensor name.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}__{}", self.next)
    }

    /// Declares a graph input (dims: None = batch).
    pub fn input(&mut self, name: &str, dims: &[Option<usize>]) -> String {
        self.inputs.push(value_info(name, dims));
        name.into()
    }

    /// Declares `tensor` as the graph output `name` (through an Identity so the name is ours).
    pub fn output(&mut self, tensor: &str, name: &str, dims: &[Option<usize>]) {
        self.node_named("Identity", &[tensor], vec![], name);
        self.outputs.push(value_info(name, dims));
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node_named(op, inputs, attrs, &out);
        out
    }

    fn node_named(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>, out: &str) {
        self.node_outputs(op, inputs, attrs, &[out]);
    }

    /// Adds a node with several outputs of the given names.
    pub fn node_outputs(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>, outs: &[&str]) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// A float32 initializer.
    pub fn init_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        self.inits.push(tensor_f32(&name, dims, data));
        name
    }

    fn init_i8(&mut self, hint: &str, dims: &[usize], data: &[i8]) -> String {
        let name = self.fresh(hint);
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Int8 as i32,
            raw_data: data.iter().map(|&v| v as u8).collect(),
            ..Default::default()
        });
        name
    }

    /// An int64 constant (shapes, axes, indices), shared between uses. `dims` empty = scalar.
    pub fn const_i64(&mut self, dims: &[usize], data: &[i64]) -> String {
        let key = format!("{dims:?}{data:?}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.fresh("const");
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        self.consts.insert(key, name.clone());
        name
    }

    /// A 1-D int64 constant.
    pub fn ints(&mut self, v: &[i64]) -> String {
        self.const_i64(&[v.len()], v)
    }

    /// A float scalar constant, shared.
    pub fn scalar(&mut self, v: f32) -> String {
        let key = format!("f32:{}", v.to_bits());
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.fresh("scalar");
        self.inits.push(tensor_f32(&name, &[], &[v]));
        self.consts.insert(key, name.clone());
        name
    }

    /// The int8 DequantizeLinear of a weight `w` (dims, channels on `axis`).
    fn dq_weight(&mut self, site: &str, dims: &[usize], w: &[f32], axis: usize) -> String {
        let (q, scales) = quantize_per_channel(w, dims, axis, self.mode.weight_max());
        let qn = self.init_i8(&format!("{site}.w_q"), dims, &q);
        let sn = self.init_f32(&format!("{site}.w_scale"), &[scales.len()], &scales);
        let zn = self.init_i8(&format!("{site}.w_zp"), &[scales.len()], &vec![0; scales.len()]);
        self.quantized_weights += 1;
        self.node("DequantizeLinear", &[&qn, &sn, &zn], vec![attr_i("axis", axis as i64)])
    }

    /// The site's input as the graph should consume it: itself, or its Q/DQ pair.
    fn site_input(&mut self, site: &str, x: &str) -> String {
        let site = format!("{}{site}", self.site_prefix);
        self.sites.push((site.clone(), x.into()));
        let scale = match &self.mode {
            Mode::Int8Static { scales, .. } => scales.get(&site).copied(),
            _ => return x.into(),
        };
        let Some(scale) = scale else {
            self.unquantized_sites.push(site);
            return x.into();
        };
        // One Q/DQ pair per tensor and scale: members reading one input may calibrate it apart.
        let key = format!("{x}@{}", scale.to_bits());
        if let Some(n) = self.qdq.get(&key) {
            return n.clone();
        }
        let s = self.scalar(scale);
        let z = match self.consts.get("i8:0") {
            Some(z) => z.clone(),
            None => {
                let z = self.init_i8("act_zp", &[], &[0]);
                self.consts.insert("i8:0".into(), z.clone());
                z
            }
        };
        let q = self.node("QuantizeLinear", &[x, &s, &z], vec![]);
        let dq = self.node("DequantizeLinear", &[&q, &s, &z], vec![]);
        self.quantized_activations += 1;
        self.qdq.insert(key, dq.clone());
        dq
    }

    fn weight(&mut self, site: &str, dims: &[usize], w: &[f32], axis: usize) -> String {
        match self.mode {
            Mode::Fp32 => self.init_f32(&format!("{site}.weight"), dims, w),
            Mode::Int8Static { .. } | Mode::Int8WeightOnly => self.dq_weight(site, dims, w, axis),
        }
    }

    /// y = x W + b for W given as [in, out] (row-major), b [out].
    pub fn matmul_const(&mut self, site: &str, x: &str, w_in_out: &[f32], fan_in: usize, fan_out: usize, bias: Option<&[f32]>) -> String {
        let xin = self.site_input(site, x);
        let w = self.weight(site, &[fan_in, fan_out], w_in_out, 1);
        let y = self.node("MatMul", &[&xin, &w], vec![]);
        match bias {
            Some(b) => {
                let bn = self.init_f32(&format!("{site}.bias"), &[fan_out], b);
                self.node("Add", &[&y, &bn], vec![])
            }
            None => y,
        }
    }

    /// 2-D convolution, weight [out, in, k, k], stride 1, symmetric padding `pad`.
    pub fn conv(&mut self, site: &str, x: &str, w: &[f32], dims: [usize; 4], bias: Option<&[f32]>, pad: usize) -> String {
        let xin = self.site_input(site, x);
        let wn = self.weight(site, &dims, w, 0);
        let mut inputs = vec![xin, wn];
        if let Some(b) = bias {
            inputs.push(self.init_f32(&format!("{site}.bias"), &[dims[0]], b));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let p = pad as i64;
        self.node("Conv", &refs, vec![attr_ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]), attr_ints("pads", &[p, p, p, p]), attr_ints("strides", &[1, 1])])
    }

    /// The finished model and what was built.
    pub fn finish(self, doc: &str) -> (pb::ModelProto, BuildInfo) {
        let info = BuildInfo { sites: self.sites, quantized_weights: self.quantized_weights, quantized_activations: self.quantized_activations, unquantized_sites: self.unquantized_sites };
        let model = pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "sfn-export".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(pb::GraphProto { node: self.nodes, name: self.name, initializer: self.inits, input: self.inputs, output: self.outputs, ..Default::default() }),
            ..Default::default()
        };
        (model, info)
    }
}

/// What a build produced besides the graph.
#[derive(Clone, Debug, Default)]
pub struct BuildInfo {
    /// (site, tensor feeding it) in build order.
    pub sites: Vec<(String, String)>,
    pub quantized_weights: usize,
    pub quantized_activations: usize,
    pub unquantized_sites: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_quantisation_by_hand() {
        // [in=2, out=3] with channels on axis 1.
        let w = [1.0f32, -2.0, 0.0, -0.25, 0.5, 0.0];
        let (q, s) = quantize_per_channel(&w, &[2, 3], 1, QMAX);
        assert_eq!(s, vec![1.0 / 127.0, 2.0 / 127.0, 1.0]);
        // -0.25 * 127 = -31.75 -> -32; 0.5 * 127 / 2 = 31.75 -> 32.
        assert_eq!(q, vec![127, -127, 0, -32, 32, 0]);
        // Channels on axis 0 of [2, 3]: rows.
        let (q0, s0) = quantize_per_channel(&w, &[2, 3], 0, QMAX);
        assert_eq!(s0, vec![2.0 / 127.0, 0.5 / 127.0]);
        assert_eq!(q0[1], -127);
        // The reduced range: -0.25 * 63 = -15.75 -> -16; 0.5 * 63 / 2 = 15.75 -> 16.
        let (q, s) = quantize_per_channel(&w, &[2, 3], 1, QMAX_REDUCED);
        assert_eq!(s, vec![1.0 / 63.0, 2.0 / 63.0, 1.0]);
        assert_eq!(q, vec![63, -63, 0, -16, 16, 0]);
    }
}
