//! Building a [`Runtime`] and its source from an [`EdgeConfig`].

use anyhow::{bail, Context, Result};
use sfn_infer::onnxruntime_options::{OrtOptions, Provider};
use sfn_infer::BackendKind;
use sfn_sources::{FrameSource, ImageFolder, ImageFolderOptions, Pacing};

#[cfg(feature = "semantic")]
use crate::captions::{CaptionScheduler, CaptionWorker};
use crate::config::{self, EdgeConfig};
use crate::pipeline::Pipeline;
#[cfg(feature = "semantic")]
use crate::runtime::Captioning;
use crate::runtime::Runtime;
use crate::sink::{FramedWriter, JsonLines, Sink, Udp};

/// The inference back-end a config asks for.
pub fn backend(cfg: &EdgeConfig) -> BackendKind {
    let m = &cfg.model;
    match m.backend {
        config::Backend::Onnxruntime => BackendKind::OnnxRuntime(OrtOptions {
            provider: match m.provider {
                config::Provider::Cuda => Provider::Cuda,
                config::Provider::Tensorrt => Provider::TensorRt,
                config::Provider::Cpu => Provider::Cpu,
            },
            threads: m.threads,
            library: m.onnxruntime_library.clone(),
            trt_cache: m.trt_cache.clone(),
            trt_fp16: m.trt_fp16,
            trt_int8: m.trt_int8,
            strict: true,
        }),
        config::Backend::Tract => BackendKind::Tract,
    }
}

/// The caption provider a config asks for (None for "none").
#[cfg(feature = "semantic")]
pub fn caption_provider(cfg: &EdgeConfig) -> Result<Option<Box<dyn sfn_captions::CaptionProvider>>> {
    let c = &cfg.captions;
    Ok(match c.provider {
        config::CaptionProviderKind::Motion => Some(Box::new(sfn_captions::describe::MotionDescriber::default())),
        config::CaptionProviderKind::Jsonl => {
            let p = anyhow::Context::context(c.jsonl.as_ref(), "captions.jsonl")?;
            Some(Box::new(sfn_captions::jsonl::JsonlCaptions::open(p)?))
        }
        config::CaptionProviderKind::Openai => Some(Box::new(sfn_captions::openai::OpenAiCaptions::new(sfn_captions::openai::OpenAiConfig {
            base_url: anyhow::Context::context(c.endpoint.clone(), "captions.endpoint")?,
            model: c.vlm_model.clone().unwrap_or_else(|| "InternVL2.5-1B".into()),
            ..Default::default()
        }))),
        config::CaptionProviderKind::None => None,
    })
}

/// The export to run: `model.dir`, except that tract runs an int8 export (static QDQ or weight-only)
/// slower than fp32 (26.2 vs 21.5 ms a frame for the committed model, one core: docs/deployment.md),
/// so on tract an int8 export whose parent directory holds its fp32 export (the layout `sfn-train
/// export` writes: OUT/ and OUT/int8/) runs that fp32 export instead, and says so; without one it runs
/// the int8 export and warns. `model.tract_int8 = true` keeps the int8 export on tract.
pub fn model_dir_for_backend(cfg: &EdgeConfig) -> std::path::PathBuf {
    use sfn_infer::manifest::{Manifest, Precision};
    let dir = cfg.model.dir.clone();
    if cfg.model.backend != config::Backend::Tract || cfg.model.tract_int8 {
        return dir;
    }
    let Ok(m) = Manifest::read(&dir) else { return dir };
    if m.precision == Precision::Fp32 {
        return dir;
    }
    match dir.parent().filter(|p| Manifest::read(p).is_ok_and(|f| f.precision == Precision::Fp32)) {
        Some(fp32) => {
            tracing::warn!(int8 = %dir.display(), fp32 = %fp32.display(), "tract runs int8 exports slower than fp32: running the fp32 export beside it (int8 pays off on ONNX Runtime; model.tract_int8 = true keeps int8)");
            fp32.to_path_buf()
        }
        None => {
            tracing::warn!(model = %dir.display(), precision = m.precision.name(), "tract runs int8 exports slower than fp32, and no fp32 export is beside this one: running it as it is");
            dir
        }
    }
}

/// The export a config runs, loaded.
pub fn model(cfg: &EdgeConfig) -> Result<sfn_infer::ExportedModel> {
    if !cfg.model.dir.is_dir() {
        bail!("model.dir {}: no such directory (an export by `sfn-train export`)", cfg.model.dir.display());
    }
    Ok(sfn_infer::ExportedModel::open(&model_dir_for_backend(cfg), &backend(cfg))?)
}

/// Pipeline, caption worker and (with `open_sinks`) the sinks.
pub fn runtime(cfg: &EdgeConfig, open_sinks: bool) -> Result<Runtime> {
    runtime_with_model(cfg, open_sinks, model(cfg)?)
}

/// One runtime per camera config (`cameras::expand`), all on one loaded copy of the model where the
/// back-end shares it (tract), else one copy each; with `model.max_batch` > 1, all on one copy behind
/// a batcher (any back-end) that runs the calls of the cameras ready together as one batch.
pub fn runtimes(cameras: &[EdgeConfig], open_sinks: bool) -> Result<Vec<Runtime>> {
    let Some(first) = cameras.first() else { return Ok(vec![]) };
    let mut shared = model(first)?;
    if cameras.len() == 1 && first.model.max_batch > 1 {
        tracing::warn!(max_batch = first.model.max_batch, "model.max_batch batches several cameras' calls: with one camera it has no effect");
    }
    if cameras.len() > 1 && first.model.max_batch > 1 {
        let opts = sfn_infer::batch::BatchOptions { max_batch: first.model.max_batch, deadline: std::time::Duration::from_millis(first.model.batch_deadline_ms) };
        tracing::info!(max_batch = opts.max_batch, deadline_ms = first.model.batch_deadline_ms, cameras = cameras.len(), "batching the cameras' model calls");
        shared = shared.batched(opts)?;
    }
    // Several cameras reporting over MQTT: one connection for all of them.
    let mut mqtt: Vec<Option<crate::mqtt::MqttSink>> = match (&first.sinks.mqtt, open_sinks && cameras.len() > 1) {
        (Some(_), true) => {
            let devices: Vec<(&str, &config::MqttConfig, bool)> =
                cameras.iter().filter_map(|c| c.sinks.mqtt.as_ref().map(|m| (c.device.as_str(), m, c.snapshot.as_ref().is_some_and(|s| s.mqtt)))).collect();
            crate::mqtt::MqttSink::connect_shared(&devices, crate::pipeline::model_id_of(&shared.manifest))?.into_iter().map(Some).collect()
        }
        _ => vec![],
    };
    mqtt.resize_with(cameras.len(), || None);
    cameras
        .iter()
        .zip(mqtt)
        .map(|(cam, mqtt)| {
            let m = match shared.share() {
                Some(m) => m,
                None => model(cam)?,
            };
            runtime_with(cam, open_sinks, m, mqtt)
        })
        .collect()
}

/// [`runtime`] on an export already loaded ([`model`], or a copy shared with other cameras).
pub fn runtime_with_model(cfg: &EdgeConfig, open_sinks: bool, model: sfn_infer::ExportedModel) -> Result<Runtime> {
    runtime_with(cfg, open_sinks, model, None)
}

/// [`runtime_with_model`] with its MQTT sink already connected (`mqtt`: one of several cameras on
/// one connection); without it the sink is opened from the config.
fn runtime_with(cfg: &EdgeConfig, open_sinks: bool, model: sfn_infer::ExportedModel, mqtt: Option<crate::mqtt::MqttSink>) -> Result<Runtime> {
    let calibration = match &cfg.model.calibration {
        Some(p) => Some(scene_calibration(p, &model.manifest)?),
        None => None,
    };
    let pipeline = Pipeline::with_calibration(model, calibration, cfg.alarm.clone())?;
    let mut rt = Runtime::new(pipeline, &cfg.device);
    rt.health_period = std::time::Duration::from_secs_f64(cfg.health.period_s);
    let manifest = cfg.model.dir.join(sfn_infer::manifest::MANIFEST);
    #[cfg(feature = "semantic")]
    match (&rt.pipeline.manifest().text, caption_provider(cfg)?) {
        (Some(t), None) => bail!("{}: the model was trained with captions ({}); set captions.provider (motion, jsonl or openai)", manifest.display(), t.provider),
        (None, Some(_)) => tracing::warn!("captions.provider is set but the model was trained without captions: captions off"),
        (Some(_), Some(p)) => {
            let dir = cfg.captions.encoder.clone().unwrap_or_else(sfn_text::default_dir);
            let encoder = sfn_text::SentenceEncoder::load(&dir)?;
            let c = &cfg.captions;
            let worker = CaptionWorker::spawn(p, Box::new(encoder));
            rt.captions = Some(Captioning::new(worker, CaptionScheduler::new(c.budget.clone()), if c.rgb { 3 } else { 1 }, c.frame_size[0], c.frame_size[1]));
        }
        (None, None) => {}
    }
    #[cfg(not(feature = "semantic"))]
    match &rt.pipeline.manifest().text {
        Some(t) => bail!("{}: the model was trained with captions ({}); this build has no `semantic` feature (build with --features semantic)", manifest.display(), t.provider),
        None if cfg.captions.provider != config::CaptionProviderKind::None => tracing::warn!("captions.provider is set but this build has no `semantic` feature: captions off"),
        None => {}
    }
    if let Some(_g) = &cfg.gpio {
        #[cfg(not(feature = "gpio-cdev"))]
        bail!("gpio is configured but this build has no `gpio-cdev` feature");
        #[cfg(feature = "gpio-cdev")]
        if open_sinks {
            rt.on_alarm_state = Some(crate::gpio::cdev_pin(_g)?);
        }
    }
    if open_sinks {
        rt.sinks = match mqtt {
            Some(m) => {
                let mut s = sinks_except_mqtt(cfg)?;
                s.push(Box::new(m));
                s
            }
            None => sinks(cfg, rt.pipeline.model_id())?,
        };
        if let Some(sc) = &cfg.snapshot {
            let publish = if sc.mqtt { rt.sinks.iter().find_map(|s| s.snapshot_publisher()) } else { None };
            let publish: Option<crate::snapshot::Publish> = publish.map(|p| Box::new(move |jpeg: Vec<u8>| p.set(jpeg).map_err(|e| e.to_string())) as crate::snapshot::Publish);
            rt.snapshots = Some(crate::snapshot::Snapshots::start(sc.clone(), &cfg.device, publish)?);
        }
    }
    Ok(rt)
}

/// The causal calibration of a recalibrated export (`path`: its model.json or its folder), checked to
/// belong to the network that runs (`running`: the loaded export's manifest).
pub fn scene_calibration(path: &std::path::Path, running: &sfn_infer::Manifest) -> Result<sfn_scoring::CausalCalibration> {
    let file = if path.is_dir() { path.join(sfn_infer::manifest::MANIFEST) } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).with_context(|| format!("model.calibration {}", file.display()))?;
    let m = sfn_infer::Manifest::parse(&text, &file)?;
    if m.encoder.sha256 != running.encoder.sha256 || m.decoder.sha256 != running.decoder.sha256 {
        bail!(
            "model.calibration {}: calibrated for another network (encoder sha256 {}, the running export's is {}): recalibrate the export that runs (`sfn-host calibrate --model` on it)",
            file.display(),
            &m.encoder.sha256[..m.encoder.sha256.len().min(12)],
            &running.encoder.sha256[..running.encoder.sha256.len().min(12)]
        );
    }
    m.calibration.with_context(|| format!("model.calibration {}: no causal calibration in it", file.display()))
}

/// The configured sinks, opened (`model_id`: the model's id in packets, for MQTT discovery).
pub fn sinks(cfg: &EdgeConfig, model_id: [u8; 4]) -> Result<Vec<Box<dyn Sink>>> {
    let mut out = sinks_except_mqtt(cfg)?;
    if let Some(m) = &cfg.sinks.mqtt {
        let snapshots = cfg.snapshot.as_ref().is_some_and(|s| s.mqtt);
        out.push(Box::new(crate::mqtt::MqttSink::connect(&cfg.device, m, model_id, snapshots)?));
    }
    Ok(out)
}

/// The configured sinks but MQTT, opened.
fn sinks_except_mqtt(cfg: &EdgeConfig) -> Result<Vec<Box<dyn Sink>>> {
    let s = &cfg.sinks;
    let mut out: Vec<Box<dyn Sink>> = Vec::new();
    if s.stdout {
        out.push(Box::new(JsonLines::stdout()));
    }
    if let Some(p) = &s.json_file {
        out.push(Box::new(JsonLines::file(p)?));
    }
    if let Some(p) = &s.packet_file {
        out.push(Box::new(FramedWriter::file(p)?));
    }
    if let Some(peer) = &s.udp {
        out.push(Box::new(Udp::new(peer)?));
    }
    if let Some(p) = &s.serial {
        out.push(Box::new(FramedWriter::serial(p)?));
    }
    Ok(out)
}

/// The configured frame source.
pub fn source(cfg: &EdgeConfig) -> Result<Box<dyn FrameSource>> {
    let Some(s) = &cfg.source else { bail!("the config lists several cameras: open each camera's config (`cameras::expand`)") };
    Ok(match s.kind {
        config::SourceKind::Folder => {
            let pacing = if s.realtime { Pacing::RealTime { fps: s.fps } } else { Pacing::AsFastAsPossible };
            Box::new(ImageFolder::open(&s.path, ImageFolderOptions { pacing, skip_corrupt: s.skip_corrupt, fps: Some(s.fps), start_time_ms: s.start_time_ms })?)
        }
        config::SourceKind::Video => {
            #[cfg(feature = "video")]
            {
                let pacing = if s.realtime { Pacing::RealTime { fps: s.fps } } else { Pacing::AsFastAsPossible };
                Box::new(sfn_sources::VideoFile::open(&s.path, sfn_sources::VideoFileOptions { pacing, start_time_ms: s.start_time_ms, ..Default::default() })?)
            }
            #[cfg(not(feature = "video"))]
            bail!("source.kind = \"video\" needs a build with the `video` feature (FFmpeg)")
        }
        config::SourceKind::Stream => {
            #[cfg(feature = "video")]
            {
                let url = s.path.to_string_lossy();
                let o = sfn_sources::StreamOptions { timeout: std::time::Duration::from_millis(s.timeout_ms), rtsp_tcp: s.rtsp_transport == config::RtspTransport::Tcp, ..Default::default() };
                Box::new(sfn_sources::open_stream(&url, o)?)
            }
            #[cfg(not(feature = "video"))]
            bail!("source.kind = \"stream\" needs a build with the `video` feature (FFmpeg)")
        }
        config::SourceKind::V4l2 => {
            #[cfg(feature = "v4l")]
            {
                camera(cfg)?
            }
            #[cfg(not(feature = "v4l"))]
            bail!("source.kind = \"v4l2\" needs a build with the `v4l` feature")
        }
    })
}

/// The V4L2 camera of a config.
#[cfg(feature = "v4l")]
fn camera(cfg: &EdgeConfig) -> Result<Box<dyn FrameSource>> {
    let Some(s) = &cfg.source else { bail!("no source") };
    let mut c = sfn_sources::V4l2Config::new(&s.path);
    if let Some(w) = s.width {
        c.width = w;
    }
    if let Some(h) = s.height {
        c.height = h;
    }
    c.fps = s.fps.round().max(1.0) as u32;
    if let Some(f) = &s.pixel_format {
        c.format = match f {
            config::PixelFormat::Grey => sfn_sources::PixelFormat::Grey,
            config::PixelFormat::Mjpg => sfn_sources::PixelFormat::Mjpg,
            config::PixelFormat::Yuyv => sfn_sources::PixelFormat::Yuyv,
        };
    }
    Ok(Box::new(sfn_sources::V4l2Camera::open(c)?))
}
