//! The SFN-VAD encoder and decoder written as ONNX graphs, block by block as in `sfn-models`.
//!
//! Every op mirrors the candle code it replaces (same order of operations, same folded SFFM banks via
//! [`sfn_models::sffm::fold_experts`], same sin-cos positions), so fp32 outputs agree to float rounding.

use sfn_infer::manifest::names;
use sfn_models::appearance::AppearanceConfig;
use sfn_models::config::FilterKind;
use sfn_models::SfnConfig;
use tract_onnx::pb;

pub use crate::net::Weights;
use crate::net::{sincos, Net};
use crate::onnx::{attr_f, attr_i, BuildInfo, GraphBuilder, Mode};
use crate::ExportError;

/// The per-frame encoder: frame, prev_frame -> tokens, patch_embed, motion.
pub fn encoder(cfg: &SfnConfig, w: &Weights, mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    encoder_members(cfg, &[w], mode)
}

/// The encoder of an ensemble: each member's encodings of the frame, concatenated on the last axis
/// (tokens [B, Np, K d_a], patch_embed [B, Np, K d_a], motion [B, 1 + Np, K d_m]); one member is
/// [`encoder`].
pub fn encoder_members(cfg: &SfnConfig, members: &[&Weights], mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    let first = first_member(members)?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_encoder", mode), w: first };
    let i = &cfg.image;
    let frame_dims = [None, Some(i.channels), Some(i.height), Some(i.width)];
    let frame = net.g.input(names::FRAME, &frame_dims);
    let prev = net.g.input(names::PREV_FRAME, &frame_dims);
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm) = (cfg.appearance.dim, cfg.motion.dim);
    let mut outs: [Vec<String>; 3] = Default::default();
    for (k, w) in members.iter().enumerate() {
        net.w = w;
        net.g.set_site_prefix(&member_prefix(k));
        let (tokens, pe, motion) = encoder_body(&mut net, cfg, &frame, &prev)?;
        outs[0].push(tokens);
        outs[1].push(pe);
        outs[2].push(motion);
    }
    let [tokens, pe, motion] = outs.map(|o| concat_last(&mut net, &o));
    let k = members.len();
    net.g.output(&tokens, names::TOKENS, &[None, Some(np), Some(k * da)]);
    net.g.output(&pe, names::PATCH_EMBED, &[None, Some(np), Some(k * da)]);
    net.g.output(&motion, names::MOTION, &[None, Some(np + 1), Some(k * dm)]);
    Ok(net.g.finish("SFN-VAD per-frame encoder: appearance tokens, patch embedding, motion tokens of frame - prev_frame"))
}

/// The first of an ensemble's members (an error for none).
fn first_member<'a>(members: &[&'a Weights<'a>]) -> Result<&'a Weights<'a>, ExportError> {
    members.first().copied().ok_or_else(|| ExportError::Weights { name: "members".into(), reason: "an ensemble needs at least one network".into() })
}

/// Site names of ensemble member `k` (the first keeps the single network's).
pub fn member_prefix(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("member{k}/")
    }
}

/// The tensors concatenated on the last axis (the tensor itself when there is one).
fn concat_last(net: &mut Net, xs: &[String]) -> String {
    if xs.len() == 1 {
        return xs[0].clone();
    }
    let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
    net.g.node("Concat", &refs, vec![attr_i("axis", -1)])
}

/// One network's encodings of `frame` (and `frame - prev`): tokens, patch_embed, motion.
fn encoder_body(net: &mut Net, cfg: &SfnConfig, frame: &str, prev: &str) -> Result<(String, String, String), ExportError> {
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let cpp = i.channels * cfg.patch * cfg.patch;
    let (da, dm) = (cfg.appearance.dim, cfg.motion.dim);

    // Appearance: z = ViT(PatchEmbed(I) + pos).
    let patches = net.patchify(frame, cfg);
    let pe = net.linear("appearance.patch_embed.proj", &patches, cpp, da)?;
    let pos = sincos(gh, gw, da)?;
    let pos = net.g.init_f32("appearance.pos", &[np, da], &pos);
    let x = net.g.node("Add", &[&pe, &pos], vec![]);
    let tokens = net.vit_stack("appearance.vit", &x, &cfg.appearance, np)?;

    // Motion: m = ViT([CLS; PatchEmbed(I - I_prev)] + pos).
    let diff = net.g.node("Sub", &[frame, prev], vec![]);
    let dp = net.patchify(&diff, cfg);
    let mx = net.linear("motion.patch_embed.proj", &dp, cpp, dm)?;
    let cls = net.w.get("motion.cls", &[1, 1, dm])?;
    let cls = net.g.init_f32("motion.cls", &[1, 1, dm], &cls);
    let shape = net.g.node("Shape", &[&mx], vec![]);
    let b = net.slice(&shape, 0, 0, 1);
    let rest = net.g.ints(&[1, dm as i64]);
    let cls_shape = net.g.node("Concat", &[&b, &rest], vec![attr_i("axis", 0)]);
    let cls_b = net.g.node("Expand", &[&cls, &cls_shape], vec![]);
    let x = net.g.node("Concat", &[&cls_b, &mx], vec![attr_i("axis", 1)]);
    let mut mpos = vec![0f32; dm];
    mpos.extend(sincos(gh, gw, dm)?);
    let mpos = net.g.init_f32("motion.pos", &[np + 1, dm], &mpos);
    let x = net.g.node("Add", &[&x, &mpos], vec![]);
    let motion = net.vit_stack("motion.vit", &x, &cfg.motion, np + 1)?;
    Ok((tokens, pe, motion))
}

/// The decoder: cached encodings of a window (+ caption) -> predicted frame t+1 and text feature.
pub fn decoder(cfg: &SfnConfig, w: &Weights, mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    decoder_members(cfg, &[w], mode)
}

/// The decoder of an ensemble: member k reads its slice k of the last axis of the cached encodings
/// ([`encoder_members`]); I_hat = (1/K) sum_k I_hat^(k), and the text feature likewise. One member is
/// [`decoder`].
pub fn decoder_members(cfg: &SfnConfig, members: &[&Weights], mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    let first = first_member(members)?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_decoder", mode), w: first };
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm, dt) = (cfg.appearance.dim, cfg.motion.dim, cfg.text_dim);
    let frame_dims = [None, Some(i.channels), Some(i.height), Some(i.width)];
    let k = members.len();
    let ft = net.g.input(names::FRAME_TOKENS, &[None, Some(4), Some(np), Some(k * da)]);
    let skip = net.g.input(names::SKIP, &[None, Some(np), Some(k * da)]);
    let motion = net.g.input(names::MOTIONS, &[None, Some(3), Some(np + 1), Some(k * dm)]);
    let text = net.g.input(names::TEXT, &[None, Some(dt)]);
    let mask = net.g.input(names::TEXT_MASK, &[None, Some(1)]);
    let last = net.g.input(names::LAST_FRAME, &frame_dims);
    // The frame head's pixel stem reads frame t-1 too (an input only where the network has a stem).
    let prev = (cfg.decoder.pixel_stem > 0).then(|| net.g.input(names::PREV_FRAME, &frame_dims));
    let (mut frames, mut texts) = (Vec::with_capacity(k), Vec::with_capacity(k));
    for (m, w) in members.iter().enumerate() {
        net.w = w;
        net.g.set_site_prefix(&member_prefix(m));
        let part = |net: &mut Net, x: &str, axis: i64, d: usize| if k == 1 { x.to_string() } else { net.slice(x, axis, (m * d) as i64, ((m + 1) * d) as i64) };
        let inputs = DecoderInputs {
            frame_tokens: part(&mut net, &ft, 3, da),
            skip: part(&mut net, &skip, 2, da),
            motion: part(&mut net, &motion, 3, dm),
            text: text.clone(),
            mask: mask.clone(),
            last: last.clone(),
            prev: prev.clone(),
        };
        let (frame, text_pred) = decoder_body(&mut net, cfg, &inputs)?;
        frames.push(frame);
        texts.push(text_pred);
    }
    let frame = mean(&mut net, &frames);
    let text_pred = mean(&mut net, &texts);
    net.g.output(&frame, names::PRED_FRAME, &frame_dims);
    net.g.output(&text_pred, names::PRED_TEXT, &[None, Some(dt)]);
    Ok(net.g.finish("SFN-VAD decoder: tri-modal fusion, MJAD layers each followed by the SFFM, frame and text heads"))
}

/// (x_1 + ... + x_K) / K, summed in order (the trainer's ensemble sums the same way); x_1 when K = 1.
fn mean(net: &mut Net, xs: &[String]) -> String {
    let mut sum = xs[0].clone();
    for x in &xs[1..] {
        sum = net.g.node("Add", &[&sum, x], vec![]);
    }
    if xs.len() == 1 {
        return sum;
    }
    let inv = net.g.scalar(1.0 / xs.len() as f32);
    net.g.node("Mul", &[&sum, &inv], vec![])
}

/// One member's view of the decoder's inputs.
struct DecoderInputs {
    frame_tokens: String,
    skip: String,
    motion: String,
    text: String,
    mask: String,
    last: String,
    prev: Option<String>,
}

/// One network's decoder: its cached encodings (+ caption) -> predicted frame t+1 and text feature.
fn decoder_body(net: &mut Net, cfg: &SfnConfig, inputs: &DecoderInputs) -> Result<(String, String), ExportError> {
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm, d, dt) = (cfg.appearance.dim, cfg.motion.dim, cfg.model_dim, cfg.text_dim);
    let DecoderInputs { frame_tokens: ft, skip, motion, text, mask, last, prev } = inputs;
    let stem_c = cfg.decoder.pixel_stem;
    let w = net.w;

    // Tri-modal fusion.
    let frames = net.concat_on_channels(ft, 4, np, da);
    let motions = net.concat_on_channels(motion, 3, np + 1, dm);
    let m = net.linear("fusion.motion_proj", &motions, 3 * dm, d)?;
    let motion_cls = net.slice(&m, 1, 0, 1);
    let motion_patches = net.slice(&m, 1, 1, 1 + np as i64);
    let fp = net.linear("fusion.frame_proj", &frames, 4 * da, d)?;
    let patches = net.g.node("Add", &[&fp, &motion_patches], vec![]);
    let pos = sincos(gh, gw, d)?;
    let pos = net.g.init_f32("fusion.pos", &[np, d], &pos);
    let patches = net.g.node("Add", &[&patches, &pos], vec![]);
    let tp = net.linear("fusion.text_proj", text, dt, d)?;
    let ax1 = net.g.ints(&[1]);
    let tp = net.g.node("Unsqueeze", &[&tp, &ax1], vec![]);
    let nc = net.w.get("fusion.no_caption", &[1, 1, d])?;
    let nc = net.g.init_f32("fusion.no_caption", &[1, 1, d], &nc);
    let ax2 = net.g.ints(&[2]);
    let mask3 = net.g.node("Unsqueeze", &[mask, &ax2], vec![]);
    let half = net.g.scalar(0.5);
    let cond = net.g.node("Greater", &[&mask3, &half], vec![]);
    let text_tok = net.g.node("Where", &[&cond, &tp, &nc], vec![]);
    let t = np + 2;
    let mut h = net.g.node("Concat", &[&text_tok, &motion_cls, &patches], vec![attr_i("axis", 1)]);

    // MJAD layers: h = Filter(Block(h)).
    let v = &cfg.decoder.vit;
    for l in 0..v.depth {
        h = net.block(&format!("decoder.layers.{l}.block"), &h, v, t)?;
        let fp = format!("decoder.layers.{l}.filter");
        h = match cfg.sffm.kind {
            FilterKind::Sffm => net.sffm(&fp, &h, cfg, t)?,
            FilterKind::Mlp => {
                let x = net.layer_norm(&format!("{fp}.ln"), &h, v.dim)?;
                net.mlp(&format!("{fp}.mlp"), &x, v.dim, v.dim * v.mlp_ratio, v.dim)?
            }
            FilterKind::Memory => net.memory(&format!("{fp}.memory"), &h, cfg, t)?,
        };
    }
    let h = net.layer_norm("decoder.norm", &h, d)?;

    // Frame head.
    let hp = net.slice(&h, 1, 2, 2 + np as i64);
    let cat = net.g.node("Concat", &[&hp, skip], vec![attr_i("axis", 2)]);
    // With a head scale s the head works at 1/s resolution on patches of p / s.
    let s = cfg.decoder.head_scale;
    let p = cfg.patch / s;
    let hid = cfg.decoder.head_channels;
    let x = net.linear("decoder.frame_head.expand", &cat, d + da, hid * p * p)?;
    let x = net.reshape(&x, &[0, gh as i64, gw as i64, hid as i64, p as i64, p as i64]);
    let x = net.transpose(&x, &[0, 3, 1, 4, 2, 5]);
    let mut x = net.reshape(&x, &[0, hid as i64, (gh * p) as i64, (gw * p) as i64]);
    let c = i.channels;
    // conv(name, input, out, in) -> LeakyReLU(Conv3x3), padding 1.
    let conv3 = |net: &mut Net, name: &str, x: &str, co: usize, ci: usize| -> Result<String, ExportError> {
        let wt = w.get(&format!("decoder.frame_head.{name}.weight"), &[co, ci, 3, 3])?;
        let b = w.get(&format!("decoder.frame_head.{name}.bias"), &[co])?;
        let y = net.g.conv(&format!("decoder.frame_head.{name}"), x, &wt, [co, ci, 3, 3], Some(&b), 1);
        Ok(net.g.node("LeakyRelu", &[&y], vec![attr_f("alpha", 0.2)]))
    };
    if let Some(prev) = &prev {
        // x_pix = [I_t, I_t - I_{t-1}] -> two 3x3 convolutions, concatenated with the token features.
        let diff = net.g.node("Sub", &[last, prev], vec![]);
        let px = net.g.node("Concat", &[last, &diff], vec![attr_i("axis", 1)]);
        let px = net.space_to_depth(&px, 2 * c, i.height, i.width, s);
        let st = conv3(net, "stem0", &px, stem_c, 2 * c * s * s)?;
        let st = conv3(net, "stem1", &st, stem_c, stem_c)?;
        x = net.g.node("Concat", &[&x, &st], vec![attr_i("axis", 1)]);
    }
    let mut x = conv3(net, "conv3", &x, hid, hid + stem_c)?;
    if prev.is_some() {
        x = conv3(net, "conv3b", &x, hid, hid)?;
    }
    let r = cfg.decoder.warp_radius;
    let warp_c = sfn_models::mjad::warp_logits(r);
    let co = c * s * s + warp_c;
    let c1w = w.get("decoder.frame_head.conv1.weight", &[co, hid, 1, 1])?;
    let c1b = w.get("decoder.frame_head.conv1.bias", &[co])?;
    let frame = net.g.conv("decoder.frame_head.conv1", &x, &c1w, [co, hid, 1, 1], Some(&c1b), 0);
    let mut frame = net.depth_to_space(&frame, c, i.height, i.width, s);
    if r > 0 {
        // The warp needs head scale 1 (validated), so the head's output is [residual; shift logits].
        let residual = net.slice(&frame, 1, 0, c as i64);
        let logits = net.slice(&frame, 1, c as i64, (c + warp_c) as i64);
        let warped = net.local_warp(last, &logits, i.height, i.width, r);
        frame = net.g.node("Add", &[&warped, &residual], vec![]);
    } else if cfg.decoder.residual {
        frame = net.g.node("Add", &[&frame, last], vec![]);
    }
    // Text head on the text token.
    let t0 = net.slice(&h, 1, 0, 1);
    let t0 = net.g.node("Squeeze", &[&t0, &ax1], vec![]);
    let text_pred = net.mlp("decoder.text_head", &t0, d, d, dt)?;
    // Without a residual head `last_frame` stays an (unused) input, so every export has one signature.
    Ok((frame, text_pred))
}

/// The appearance cue's network (always fp32: a few small matrices a box):
/// box_errors = mean_d (W_d SFFM(GELU(W_e x + b_e)) + b_d - x)^2 for boxes x [N, D].
pub fn appearance(cfg: &AppearanceConfig, w: &Weights) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    cfg.validate()?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_appearance", Mode::Fp32), w };
    let (d, hid) = (cfg.input_dim(), cfg.hidden);
    let x = net.g.input(names::BOXES, &[None, Some(d)]);
    let h = net.linear("enc", &x, d, hid)?;
    let h = net.gelu(&h);
    let h = net.sffm_rows("sffm", &h, hid, &cfg.sffm)?;
    let y = net.linear("dec", &h, hid, d)?;
    let diff = net.g.node("Sub", &[&y, &x], vec![]);
    let sq = net.g.node("Mul", &[&diff, &diff], vec![]);
    let ax = net.g.ints(&[1]);
    let sum = net.g.node("ReduceSum", &[&sq, &ax], vec![attr_i("keepdims", 0)]);
    let inv = net.g.scalar(1.0 / d as f32);
    let err = net.g.node("Mul", &[&sum, &inv], vec![]);
    net.g.output(&err, names::BOX_ERRORS, &[None]);
    Ok(net.g.finish("SFN-VAD appearance cue: each moving box's descriptor reconstructed through an SFFM bottleneck; its mean squared error"))
}
