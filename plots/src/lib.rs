//! PNG plots of anomaly scores and ROC curves (plotters, bitmap backend, pure Rust).
//!
//! Text needs a TrueType font, which plotters' `ab_glyph` backend does not look up by itself. The first
//! loadable file among `$SFN_FONT` and [`FONT_PATHS`] is registered once per process as plotters'
//! `sans-serif` family. Without any font the plots are still drawn, only without text (no title, axis
//! labels or legend).
//!
//! Files are written atomically: rendered and encoded in memory, then written with
//! [`sfn_fsio::write_atomic`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use sfn_scoring::{roc_auc, roc_curve};

/// Size (width, height) in pixels of [`score_curves_png`]'s image.
pub const SCORE_PLOT_SIZE: (u32, u32) = (1200, 450);
/// Size (width, height) in pixels of [`roc_png`]'s image.
pub const ROC_PLOT_SIZE: (u32, u32) = (640, 640);
/// Font files tried, in order, after `$SFN_FONT`.
pub const FONT_PATHS: [&str; 8] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Family name under which the font is registered (plotters' default family).
const FAMILY: &str = "sans-serif";

/// Line colours, cycled.
const COLORS: [RGBColor; 8] =
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(23, 190, 207), RGBColor(127, 127, 127)];
/// Shade of abnormal frames.
const ABNORMAL: RGBColor = RGBColor(255, 205, 205);

/// Errors of plotting.
#[derive(thiserror::Error, Debug)]
pub enum PlotError {
    /// Nothing to plot.
    #[error("nothing to plot: no curves, or only empty ones")]
    Empty,
    /// Labels do not match the curves' length.
    #[error("{labels} labels for curves of {frames} frames (labels must be empty or one per frame)")]
    LabelLength {
        /// Number of labels.
        labels: usize,
        /// Length of the longest curve.
        frames: usize,
    },
    /// A ROC curve that cannot be computed.
    #[error("ROC curve {name:?}: needs as many labels (0/1) as scores, both classes, and no NaN score")]
    Roc {
        /// The curve's name.
        name: String,
    },
    /// Drawing failed.
    #[error("plotting failed: {0}")]
    Draw(String),
    /// Writing the file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("cannot encode PNG {}: {reason}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The font file registered for plot text, if any (loaded on first call).
pub fn font_path() -> Option<&'static Path> {
    static FONT: OnceLock<Option<PathBuf>> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var_os("SFN_FONT").map(PathBuf::from);
        let candidates = env.into_iter().chain(FONT_PATHS.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            // plotters keeps a `'static` reference: leak the bytes (once per process).
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                tracing::debug!(font = %path.display(), "plot font registered");
                return Some(path);
            }
            tracing::warn!(font = %path.display(), "not a usable font file");
        }
        tracing::warn!("no TTF font found (set SFN_FONT or install fonts-dejavu-core): plots will have no text");
        None
    })
    .as_deref()
}

/// Anomaly scores over time: one line per curve (frames on x, scores on y) with a legend, abnormal
/// frames (`labels[i] == 1`) shaded in light red. `labels` is empty (no shading) or one per frame of the
/// longest curve. Non-finite scores leave gaps in their line.
pub fn score_curves_png(path: &Path, title: &str, curves: &[(&str, &[f32])], labels: &[u8]) -> Result<(), PlotError> {
    let text = font_path().map(|_| FAMILY);
    let pixels = render(SCORE_PLOT_SIZE, |area| draw_score_curves(area, text, title, curves, labels))?;
    write_png_atomic(path, SCORE_PLOT_SIZE, pixels)
}

/// ROC curves (false positive rate on x, true positive rate on y) with each curve's AUC in the legend
/// and the chance diagonal. Each curve is `(name, scores, labels)`.
pub fn roc_png(path: &Path, title: &str, curves: &[(&str, &[f32], &[u8])]) -> Result<(), PlotError> {
    let text = font_path().map(|_| FAMILY);
    let pixels = render(ROC_PLOT_SIZE, |area| draw_roc(area, text, title, curves))?;
    write_png_atomic(path, ROC_PLOT_SIZE, pixels)
}

/// Lines through (x, y) points with axis names and a legend, optionally a vertical marker at `mark_x`
/// (e.g. a chosen threshold). Non-finite points are left out.
pub fn lines_png(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[(&str, &[(f64, f64)])], mark_x: Option<(f64, &str)>) -> Result<(), PlotError> {
    let text = font_path().map(|_| FAMILY);
    let pixels = render(ROC_PLOT_SIZE, |area| draw_lines(area, text, title, x_desc, y_desc, series, mark_x))?;
    write_png_atomic(path, ROC_PLOT_SIZE, pixels)
}

fn draw_lines(area: &Area<'_>, text: Option<&str>, title: &str, x_desc: &str, y_desc: &str, series: &[(&str, &[(f64, f64)])], mark_x: Option<(f64, &str)>) -> Result<(), PlotError> {
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if pts.is_empty() {
        return Err(PlotError::Empty);
    }
    let span = |v: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let pad = if hi - lo < 1e-12 { 0.5 } else { 0.05 * (hi - lo) };
        (lo - pad)..(hi + pad)
    };
    let (xr, yr) = (span(&mut pts.iter().map(|p| p.0)), span(&mut pts.iter().map(|p| p.1)));
    let mut builder = ChartBuilder::on(area);
    builder.margin(15);
    if let Some(family) = text {
        builder.caption(title, (family, 22)).x_label_area_size(40).y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(xr, yr.clone()).map_err(draw_err)?;
    configure_mesh(&mut chart, text, x_desc, y_desc, false)?;
    if let Some((x, name)) = mark_x {
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(DashedLineSeries::new(vec![(x, yr.start), (x, yr.end)], 6, 4, grey.stroke_width(1)))
            .map_err(draw_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    for (i, (name, p)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let p: Vec<(f64, f64)> = p.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        chart.draw_series(LineSeries::new(p, color.stroke_width(2))).map_err(draw_err)?.label(*name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend(&mut chart, text, SeriesLabelPosition::UpperRight)
}

/// One panel of [`error_map_png`]: a `height` x `width` image, row-major.
pub struct Panel<'a> {
    pub title: &'a str,
    pub values: &'a [f32],
    /// Gray from `[-1, 1]` (model pixels), or a heat scale from 0 to the panel's maximum.
    pub heat: bool,
    /// A box `(y, x, size)` to outline: the region that made this map's score.
    pub mark: Option<(usize, usize, usize)>,
}

/// Pixels per image pixel in [`error_map_png`].
const MAP_SCALE: u32 = 4;

/// Frame panels side by side (target, prediction, squared error as heat), each image pixel drawn
/// `MAP_SCALE` x `MAP_SCALE`, each with its optional box outlined ([`Panel::mark`]).
pub fn error_map_png(path: &Path, title: &str, panels: &[Panel<'_>], height: usize, width: usize) -> Result<(), PlotError> {
    if panels.is_empty() || height == 0 || width == 0 {
        return Err(PlotError::Empty);
    }
    if let Some(p) = panels.iter().find(|p| p.values.len() != height * width) {
        return Err(PlotError::Draw(format!("panel {:?}: {} values for {height}x{width}", p.title, p.values.len())));
    }
    let text = font_path().map(|_| FAMILY);
    let (pw, ph) = (width as u32 * MAP_SCALE, height as u32 * MAP_SCALE);
    let (gap, top, bottom) = (16u32, 44u32, 28u32);
    let size = (panels.len() as u32 * (pw + gap) + gap, top + ph + bottom);
    let pixels = render(size, |area| {
        if let Some(f) = text {
            area.draw(&Text::new(title.to_string(), (gap as i32, 10), (f, 20))).map_err(draw_err)?;
        }
        for (k, p) in panels.iter().enumerate() {
            let x0 = (gap + k as u32 * (pw + gap)) as i32;
            let y0 = top as i32;
            let max = p.values.iter().copied().filter(|v| v.is_finite()).fold(0f32, f32::max).max(1e-12);
            for (i, &v) in p.values.iter().enumerate() {
                let (y, x) = ((i / width) as i32, (i % width) as i32);
                let c = if p.heat {
                    heat(v / max)
                } else {
                    let g = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5) as u8;
                    RGBColor(g, g, g)
                };
                let (px, py) = (x0 + x * MAP_SCALE as i32, y0 + y * MAP_SCALE as i32);
                area.draw(&Rectangle::new([(px, py), (px + MAP_SCALE as i32, py + MAP_SCALE as i32)], c.filled())).map_err(draw_err)?;
            }
            if let Some((by, bx, bs)) = p.mark {
                let s = MAP_SCALE as i32;
                let r = [(x0 + bx as i32 * s, y0 + by as i32 * s), (x0 + (bx + bs) as i32 * s, y0 + (by + bs) as i32 * s)];
                area.draw(&Rectangle::new(r, RGBColor(0, 200, 255).stroke_width(2))).map_err(draw_err)?;
            }
            if let Some(f) = text {
                let label = if p.heat { format!("{} (max {:.4})", p.title, max) } else { p.title.to_string() };
                area.draw(&Text::new(label, (x0, y0 + ph as i32 + 6), (f, 16))).map_err(draw_err)?;
            }
        }
        Ok(())
    })?;
    write_png_atomic(path, size, pixels)
}

/// Black -> red -> yellow -> white for t in [0, 1].
fn heat(t: f32) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    let ch = |a: f32| (a.clamp(0.0, 1.0) * 255.0) as u8;
    RGBColor(ch(t * 3.0), ch(t * 3.0 - 1.0), ch(t * 3.0 - 2.0))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Renders into an RGB buffer.
fn render(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<(), PlotError>) -> Result<Vec<u8>, PlotError> {
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        area.fill(&WHITE).map_err(draw_err)?;
        draw(&area)?;
        area.present().map_err(draw_err)?;
    }
    Ok(buf)
}

/// Contiguous runs `[start, end]` of label 1.
fn abnormal_runs(labels: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l == 1, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, labels.len() - 1));
    }
    runs
}

/// Finite stretches of a curve as `(frame, score)` paths.
fn finite_segments(y: &[f32]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for (i, &v) in y.iter().enumerate() {
        if v.is_finite() {
            cur.push((i as f64, f64::from(v)));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `text`: the font family to write with, or `None` to draw no text at all.
fn draw_score_curves(area: &Area<'_>, text: Option<&str>, title: &str, curves: &[(&str, &[f32])], labels: &[u8]) -> Result<(), PlotError> {
    let frames = curves.iter().map(|(_, y)| y.len()).max().unwrap_or(0);
    if frames == 0 {
        return Err(PlotError::Empty);
    }
    if !labels.is_empty() && labels.len() != frames {
        return Err(PlotError::LabelLength { labels: labels.len(), frames });
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in curves.iter().flat_map(|(_, y)| y.iter()).filter(|v| v.is_finite()) {
        lo = lo.min(f64::from(*v));
        hi = hi.max(f64::from(*v));
    }
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    } else if hi - lo < 1e-12 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    let (y0, y1) = (lo - pad, hi + pad);
    let (x0, x1) = (-0.5, frames as f64 - 0.5);

    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if let Some(family) = text {
        builder.caption(title, (family, 22)).x_label_area_size(40).y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(draw_err)?;
    // Shading first, so that the grid stays visible over it.
    let runs = abnormal_runs(labels);
    if !runs.is_empty() {
        let anno = chart.draw_series(runs.iter().map(|&(a, b)| Rectangle::new([(a as f64 - 0.5, y0), (b as f64 + 0.5, y1)], ABNORMAL.filled()))).map_err(draw_err)?;
        anno.label("abnormal (ground truth)").legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], ABNORMAL.filled()));
    }
    configure_mesh(&mut chart, text, "scored frame (the clip's frame index minus 4)", "score", true)?;
    for (i, (name, y)) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        let anno = chart.draw_series(finite_segments(y).into_iter().map(|seg| PathElement::new(seg, style))).map_err(draw_err)?;
        anno.label(*name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend(&mut chart, text, SeriesLabelPosition::UpperLeft)
}

fn draw_roc(area: &Area<'_>, text: Option<&str>, title: &str, curves: &[(&str, &[f32], &[u8])]) -> Result<(), PlotError> {
    if curves.is_empty() {
        return Err(PlotError::Empty);
    }
    let mut computed = Vec::with_capacity(curves.len());
    for (name, scores, labels) in curves {
        let roc_err = || PlotError::Roc { name: (*name).to_string() };
        let pts = roc_curve(scores, labels).ok_or_else(roc_err)?;
        let auc = roc_auc(scores, labels).ok_or_else(roc_err)?;
        computed.push((*name, pts, auc));
    }

    let mut builder = ChartBuilder::on(area);
    builder.margin(15);
    if let Some(family) = text {
        builder.caption(title, (family, 22)).x_label_area_size(40).y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0..1.0, 0.0..1.0).map_err(draw_err)?;
    configure_mesh(&mut chart, text, "false positive rate", "true positive rate", false)?;

    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], 6, 4, grey.stroke_width(1)))
        .map_err(draw_err)?
        .label("chance (AUC 0.500)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    for (i, (name, pts, auc)) in computed.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(format!("{name} (AUC {auc:.3})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend(&mut chart, text, SeriesLabelPosition::LowerRight)
}

/// The series legend (only with a font: without one, no text is drawn at all).
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, text: Option<&str>, position: SeriesLabelPosition) -> Result<(), PlotError> {
    if let Some(family) = text {
        chart.configure_series_labels().position(position).background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.5)).label_font((family, 15)).draw().map_err(draw_err)?;
    }
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// Grid, axes and (with a font) labels. Without a font no label area exists, so plotters draws no
/// text; the label style names a family that is never registered, so any text that slipped through
/// would fail loudly (the no-font test relies on that).
/// `integer_x`: x tick labels without decimals (frame numbers).
fn configure_mesh(chart: &mut Chart<'_, '_>, text: Option<&str>, x_desc: &str, y_desc: &str, integer_x: bool) -> Result<(), PlotError> {
    let int_fmt = |x: &f64| format!("{x:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235).mix(0.6));
    if integer_x {
        mesh.x_label_formatter(&int_fmt);
    }
    match text {
        Some(family) => {
            mesh.x_desc(x_desc).y_desc(y_desc).label_style((family, 14));
        }
        None => {
            mesh.label_style(("sfn-no-font", 14));
        }
    }
    mesh.draw().map_err(draw_err)
}

/// Encodes `rgb` as PNG into a temporary file beside `path`, then renames it to `path`.
fn write_png_atomic(path: &Path, size: (u32, u32), rgb: Vec<u8>) -> Result<(), PlotError> {
    let io = |source| PlotError::Io { path: path.to_path_buf(), source };
    let img = image::RgbImage::from_raw(size.0, size.1, rgb).ok_or_else(|| PlotError::Draw("internal: buffer size does not match the image size".into()))?;
    if path.file_name().is_none() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")));
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| PlotError::Encode { path: path.to_path_buf(), reason: e.to_string() })?;
    sfn_fsio::write_atomic(path, &png).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Vec<f32>, Vec<f32>, Vec<u8>) {
        let n = 180;
        let labels: Vec<u8> = (0..n).map(|i| u8::from((60..120).contains(&i))).collect();
        let a: Vec<f32> = (0..n).map(|i| 0.2 + 0.6 * f32::from(labels[i]) + 0.1 * (i as f32 * 0.3).sin()).collect();
        let mut b: Vec<f32> = (0..n).map(|i| 0.5 + 0.3 * (i as f32 * 0.05).cos()).collect();
        b[30] = f32::NAN;
        (a, b, labels)
    }

    /// Decodes, checks the size, and returns the number of distinct colours.
    fn check_png(path: &Path, size: (u32, u32)) -> usize {
        let img = image::open(path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size);
        let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colours.len() > 1, "single colour image");
        colours.len()
    }

    #[test]
    fn runs_of_abnormal_frames() {
        assert_eq!(abnormal_runs(&[0, 1, 1, 0, 1]), vec![(1, 2), (4, 4)]);
        assert_eq!(abnormal_runs(&[1, 1]), vec![(0, 1)]);
        assert!(abnormal_runs(&[0, 0]).is_empty());
        assert!(abnormal_runs(&[]).is_empty());
        assert_eq!(finite_segments(&[1.0, f32::NAN, 2.0, 3.0]).len(), 2);
    }

    #[test]
    fn writes_score_plot() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, labels) = demo();
        let path = tmp.path().join("scores.png");
        score_curves_png(&path, "clip 01", &[("offline", &a), ("causal", &b)], &labels).unwrap();
        check_png(&path, SCORE_PLOT_SIZE);
        // The shaded band is there: a pixel in the middle of the abnormal stretch, near the top.
        let img = image::open(&path).unwrap().to_rgb8();
        let shaded = img.pixels().filter(|p| p.0 == [ABNORMAL.0, ABNORMAL.1, ABNORMAL.2]).count();
        assert!(shaded > 10_000, "{shaded} shaded pixels");
        // No temporary files left behind; overwriting works.
        score_curves_png(&path, "clip 01", &[("offline", &a)], &[]).unwrap();
        let entries: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        if std::env::var_os("SFN_KEEP_PLOTS").is_some() {
            let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plot-samples");
            std::fs::create_dir_all(&keep).unwrap();
            score_curves_png(&keep.join("scores.png"), "clip 01", &[("offline", &a), ("causal", &b)], &labels).unwrap();
            roc_png(&keep.join("roc.png"), "Ped2 test", &[("offline", &a, &labels), ("causal", &b[31..], &labels[31..])]).unwrap();
        }
    }

    #[test]
    fn writes_roc_plot() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, labels) = demo();
        let path = tmp.path().join("roc.png");
        roc_png(&path, "ROC", &[("a", &a, &labels), ("b", &b[31..], &labels[31..])]).unwrap();
        check_png(&path, ROC_PLOT_SIZE);
    }

    #[test]
    fn draws_without_font() {
        // `None`: no text at all. Any text would use an unregistered family and fail.
        let (a, b, labels) = demo();
        let px = render(SCORE_PLOT_SIZE, |area| draw_score_curves(area, None, "t", &[("a", &a), ("b", &b)], &labels)).unwrap();
        assert!(px.iter().any(|&v| v != 255));
        let px = render(ROC_PLOT_SIZE, |area| draw_roc(area, None, "t", &[("a", &a, &labels)])).unwrap();
        assert!(px.iter().any(|&v| v != 255));
        // The guard works: asking for text in an unregistered family fails.
        let r = render(ROC_PLOT_SIZE, |area| draw_roc(area, Some("sfn-no-font"), "t", &[("a", &a, &labels)]));
        assert!(matches!(r, Err(PlotError::Draw(_))));
    }

    #[test]
    fn text_is_drawn_when_a_font_exists() {
        let Some(font) = font_path() else {
            panic!("no font found: run scripts/setup.sh (installs fonts-dejavu-core) or set SFN_FONT");
        };
        assert!(font.is_file());
        let (a, _, labels) = demo();
        let with = render(ROC_PLOT_SIZE, |area| draw_roc(area, Some(FAMILY), "title", &[("a", &a, &labels)])).unwrap();
        let without = render(ROC_PLOT_SIZE, |area| draw_roc(area, None, "title", &[("a", &a, &labels)])).unwrap();
        assert_ne!(with, without);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.png");
        assert!(matches!(score_curves_png(&p, "t", &[], &[]), Err(PlotError::Empty)));
        assert!(matches!(score_curves_png(&p, "t", &[("a", &[])], &[]), Err(PlotError::Empty)));
        assert!(matches!(score_curves_png(&p, "t", &[("a", &[1.0, 2.0])], &[0, 1, 1]), Err(PlotError::LabelLength { labels: 3, frames: 2 })));
        assert!(matches!(roc_png(&p, "t", &[]), Err(PlotError::Empty)));
        assert!(matches!(roc_png(&p, "t", &[("one class", &[1.0, 2.0], &[1, 1])]), Err(PlotError::Roc { .. })));
        assert!(!p.exists());
        // Constant or all-NaN curves still plot.
        score_curves_png(&p, "t", &[("flat", &[0.5; 10]), ("nan", &[f32::NAN; 10])], &[]).unwrap();
        // Unwritable destination: an error naming it, no panic.
        let bad = tmp.path().join("missing-dir/x.png");
        let e = score_curves_png(&bad, "t", &[("a", &[1.0, 2.0])], &[]).unwrap_err();
        assert!(matches!(e, PlotError::Io { .. }) && e.to_string().contains("missing-dir"), "{e}");
    }
}
