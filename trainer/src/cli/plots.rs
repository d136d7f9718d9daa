//! PNG plots (plotters, drawn into an RGB buffer, written with the `png` crate), and the
//! plots of an evaluation ([`write_plots`]: `eval` and `bench`).
//!
//! Text needs a TrueType font, loaded at run time (plotters' `ab_glyph` backend does no font
//! discovery): `--font FILE`, default DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use ics_train::eval::{ModelEval, SharePoints};
use ics_train::ics::{Method, WeightDiagnostics};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

/// Debian `fonts-dejavu-core`.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The family name the font is registered under (for `(FAMILY, size)` text styles).
pub const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 600;
/// The legend's column, right of the chart.
const LEGEND_WIDTH: u32 = 300;

static FONT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Registers the font used for all text (once per process; later calls report the first
/// outcome).
pub fn init_font(path: Option<&Path>) -> Result<()> {
    let path = path.map_or_else(|| PathBuf::from(DEFAULT_FONT), Path::to_path_buf);
    let outcome = FONT.get_or_init(|| {
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read the plot font {}: {e} (install the Debian package \
                 fonts-dejavu-core, or pass --font FILE.ttf)",
                path.display()
            )
        })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font(FAMILY, FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a TrueType/OpenType font", path.display()))?;
        Ok(path.clone())
    });
    outcome.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// A named curve.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Draw a dot at each point.
    pub markers: bool,
    /// Thin line (for baselines).
    pub thin: bool,
}

impl Series {
    /// Its legend entry.
    fn key(&self) -> Key {
        Key {
            name: self.name.clone(),
            color: self.color,
            mark: Mark::Line {
                width: if self.thin { 1 } else { 3 },
                dot: self.markers,
            },
        }
    }
}

/// A palette that stays readable on white, for series that are not methods (label counts,
/// diagnostics); methods have their own colours ([`method_color`]).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(90, 90, 90),
];

/// The colour of a method, the same in every plot.
pub fn method_color(m: Method) -> RGBColor {
    match m {
        Method::Ics => RGBColor(31, 119, 180),      // blue
        Method::Csq => RGBColor(255, 127, 14),      // orange
        Method::Orthohash => RGBColor(44, 160, 44), // green
    }
}
/// Random codes of the same length (chance level).
pub const RANDOM_COLOR: RGBColor = RGBColor(120, 120, 120);
/// Cosine ranking of the raw float features.
pub const COSINE_COLOR: RGBColor = RGBColor(148, 103, 189);

/// `color` lightened towards white: `step` of `steps` (the last is the colour itself), so
/// that one method's curves at several code lengths keep its hue, shorter codes lighter.
fn shade(color: RGBColor, step: usize, steps: usize) -> RGBColor {
    if steps <= 1 {
        return color;
    }
    let white = 0.55 * (steps - 1 - step) as f64 / (steps - 1) as f64;
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * white).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// Writes a `width` x `height` 8-bit RGB buffer as a PNG.
pub fn write_rgb_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .with_context(|| format!("writing {}", path.display()))?;
    w.write_image_data(rgb)
        .with_context(|| format!("writing {}", path.display()))?;
    w.finish()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn draw_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// Where the x axis has its ticks.
pub enum Ticks {
    /// Round values (1, 2 or 5 times a power of ten) across the range.
    Auto,
    /// Round whole numbers (epochs).
    Whole,
    /// These positions, with these labels (code lengths, bar names).
    At(Vec<(f64, String)>),
}

/// Axes of a chart.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: std::ops::Range<f64>,
    pub y: std::ops::Range<f64>,
    pub x_ticks: Ticks,
}

/// How a legend entry is drawn.
enum Mark {
    /// A line of this width, with a dot on it.
    Line { width: u32, dot: bool },
    /// A dot (scatter points).
    Dot,
}

/// A legend entry.
struct Key {
    name: String,
    color: RGBColor,
    mark: Mark,
}

/// An f64 axis with its ticks (and mesh lines) only where given, labelled as given.
struct TickedAxis {
    inner: RangedCoordf64,
    ticks: Vec<(f64, String)>,
}

impl Ranged for TickedAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.iter().map(|t| t.0).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for TickedAxis {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .find(|t| (t.0 - value).abs() < 1e-9)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// The chart area every plot shares: a 2-D f64 cartesian chart on an RGB bitmap, its x ticks
/// where [`Axes::x_ticks`] puts them.
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<TickedAxis, RangedCoordf64>>;

/// Draws a chart with `axes` (title, mesh, axis labels), lets `draw` add the series, draws the
/// legend in a column right of the chart (never over the data) and writes the PNG.
fn chart_png(
    path: &Path,
    axes: &Axes,
    keys: &[Key],
    draw: impl FnOnce(&mut Chart) -> Result<()>,
) -> Result<()> {
    init_font(None)?;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let area = root.titled(axes.title, (FAMILY, 24)).map_err(draw_err)?;
        let legend_width = if keys.is_empty() { 0 } else { LEGEND_WIDTH };
        let (plot, legend) = area.split_horizontally(WIDTH - legend_width);
        let ticks = match &axes.x_ticks {
            Ticks::Auto => nice_ticks(axes.x.start, axes.x.end, 10, false),
            Ticks::Whole => nice_ticks(axes.x.start, axes.x.end, 12, true),
            Ticks::At(t) => t.clone(),
        };
        let x = TickedAxis {
            inner: axes.x.clone().into(),
            ticks,
        };
        let mut chart = ChartBuilder::on(&plot)
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x, axes.y.clone())
            .map_err(draw_err)?;
        let ys = axes.y.end - axes.y.start;
        let yf = move |v: &f64| tick(*v, ys);
        chart
            .configure_mesh()
            .y_label_formatter(&yf)
            .x_desc(axes.x_label)
            .y_desc(axes.y_label)
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE)
            .draw()
            .map_err(draw_err)?;
        draw(&mut chart)?;
        draw_legend(&legend, keys)?;
        root.present().map_err(draw_err)?;
    }
    write_rgb_png(path, &buf, WIDTH, HEIGHT)
}

/// The legend: one entry a line, from the top of its column.
fn draw_legend(area: &DrawingArea<BitMapBackend, Shift>, keys: &[Key]) -> Result<()> {
    let text = TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, k) in keys.iter().enumerate() {
        let y = 40 + 28 * i as i32;
        match k.mark {
            Mark::Line { width, dot } => {
                let style = ShapeStyle::from(&k.color).stroke_width(width);
                area.draw(&PathElement::new(vec![(6, y), (38, y)], style))
                    .map_err(draw_err)?;
                if dot {
                    area.draw(&Circle::new((22, y), 5, k.color.filled()))
                        .map_err(draw_err)?;
                }
            }
            Mark::Dot => area
                .draw(&Circle::new((22, y), 5, k.color.filled()))
                .map_err(draw_err)?,
        }
        area.draw(&Text::new(k.name.clone(), (46, y), text.clone()))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A line chart with a legend.
pub fn line_chart(path: &Path, axes: &Axes, series: &[Series]) -> Result<()> {
    let keys: Vec<Key> = series.iter().map(Series::key).collect();
    chart_png(path, axes, &keys, |chart| {
        for s in series {
            let style = ShapeStyle::from(&s.color).stroke_width(if s.thin { 1 } else { 3 });
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(draw_err)?;
            if s.markers {
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 5, s.color.filled())),
                    )
                    .map_err(draw_err)?;
            }
        }
        Ok(())
    })
}

/// A scatter of point groups (one legend entry each), with the y = x diagonal.
pub fn scatter_chart(path: &Path, axes: &Axes, groups: &[Series]) -> Result<()> {
    let diagonal = BLACK.mix(0.6);
    let mut keys = vec![Key {
        name: "y = x".into(),
        color: RGBColor(100, 100, 100),
        mark: Mark::Line {
            width: 1,
            dot: false,
        },
    }];
    keys.extend(groups.iter().map(|g| Key {
        name: g.name.clone(),
        color: g.color,
        mark: Mark::Dot,
    }));
    chart_png(path, axes, &keys, |chart| {
        let lo = axes.x.start.max(axes.y.start);
        let hi = axes.x.end.min(axes.y.end);
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, hi)],
                ShapeStyle::from(&diagonal).stroke_width(1),
            ))
            .map_err(draw_err)?;
        for g in groups {
            let color = g.color.mix(0.35);
            chart
                .draw_series(g.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

/// One bar of a bar chart.
pub struct Bar {
    pub name: String,
    pub value: f64,
    pub color: RGBColor,
}

/// Bars named on the x axis, each with its value above it (y from 0 to 1).
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[Bar]) -> Result<()> {
    let axes = Axes {
        title,
        x_label: "",
        y_label,
        x: -0.6..bars.len() as f64 - 0.4,
        y: 0.0..1.0,
        x_ticks: Ticks::At(
            bars.iter()
                .enumerate()
                .map(|(i, b)| (i as f64, b.name.clone()))
                .collect(),
        ),
    };
    let value_style =
        TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart_png(path, &axes, &[], |chart| {
        for (i, b) in bars.iter().enumerate() {
            let x = i as f64;
            chart
                .draw_series([Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, b.value)],
                    b.color.filled(),
                )])
                .map_err(draw_err)?;
            chart
                .draw_series([Text::new(
                    format!("{:.3}", b.value),
                    (x, b.value + 0.01),
                    value_style.clone(),
                )])
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

/// A tick label with as many decimals as the axis span needs.
fn tick(v: f64, span: f64) -> String {
    if span >= 10.0 {
        format!("{v:.0}")
    } else if span >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// At most `max` ticks at round values (1, 2 or 5 times a power of ten; whole numbers only
/// when `whole`) in `lo..=hi`, labelled with the decimals their step needs.
pub fn nice_ticks(lo: f64, hi: f64, max: usize, whole: bool) -> Vec<(f64, String)> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / max.max(1) as f64;
    let mut step = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= raw {
            step *= m;
            break;
        }
    }
    if whole {
        step = step.max(1.0).round();
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, format!("{v:.decimals$}"))
        })
        .collect()
}

/// The x ticks of a code-length axis: one at each length, placed at log2(bits) (lengths
/// usually double), labelled with the whole number of bits.
pub fn bit_ticks(bits: &[usize]) -> Vec<(f64, String)> {
    let mut b = bits.to_vec();
    b.sort_unstable();
    b.dedup();
    b.iter()
        .map(|&n| ((n as f64).log2(), n.to_string()))
        .collect()
}

/// The mAP points of the evaluations: (method, bits, mAP, random codes' mAP, model name).
struct MapPoint<'a> {
    method: Method,
    bits: usize,
    map: f64,
    random: f64,
    name: &'a str,
}

fn map_points(evals: &[ModelEval]) -> Vec<MapPoint<'_>> {
    evals
        .iter()
        .filter_map(|e| {
            let rr = e.report.retrieval.as_ref()?;
            Some(MapPoint {
                method: e.report.config.method,
                bits: rr.bits,
                map: rr.map_at_r,
                random: rr.random_codes_map_at_r,
                name: &e.name,
            })
        })
        .collect()
}

/// The lines of the mAP-vs-bits plot: one per method in its colour (x = log2 bits), the
/// cosine baseline across, random codes.
fn map_series(points: &[MapPoint], cosine: Option<f64>, x: &std::ops::Range<f64>) -> Vec<Series> {
    let mut methods: Vec<Method> = Vec::new();
    for p in points {
        if !methods.contains(&p.method) {
            methods.push(p.method);
        }
    }
    methods.sort_by_key(|m| m.label());
    let mut series: Vec<Series> = methods
        .iter()
        .map(|&m| {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.method == m)
                .map(|p| ((p.bits as f64).log2(), p.map))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: m.label().to_string(),
                points: pts,
                color: method_color(m),
                markers: true,
                thin: false,
            }
        })
        .collect();
    if let Some(c) = cosine {
        series.push(Series {
            name: "cosine, raw float features".into(),
            points: vec![(x.start, c), (x.end, c)],
            color: COSINE_COLOR,
            markers: false,
            thin: true,
        });
    }
    let mut random: Vec<(f64, f64)> = Vec::new();
    for p in points {
        let x = (p.bits as f64).log2();
        if !random.iter().any(|r| r.0 == x) {
            random.push((x, p.random));
        }
    }
    random.sort_by(|a, b| a.0.total_cmp(&b.0));
    series.push(Series {
        name: "random codes".into(),
        points: random,
        color: RANDOM_COLOR,
        markers: true,
        thin: true,
    });
    series
}

/// The bars of the one-code-length plot: each model (named by its method, or by its name when
/// several share a method) in its method's colour, then the baselines.
fn map_bars(points: &[MapPoint], cosine: Option<f64>) -> Vec<Bar> {
    let mut bars: Vec<Bar> = points
        .iter()
        .map(|p| {
            let shared = points.iter().filter(|q| q.method == p.method).count() > 1;
            Bar {
                name: if shared {
                    format!("{} ({})", p.name, p.method.label())
                } else {
                    p.method.label().to_string()
                },
                value: p.map,
                color: method_color(p.method),
            }
        })
        .collect();
    if let Some(c) = cosine {
        bars.push(Bar {
            name: "cosine, float".into(),
            value: c,
            color: COSINE_COLOR,
        });
    }
    if let Some(p) = points.first() {
        bars.push(Bar {
            name: "random codes".into(),
            value: p.random,
            color: RANDOM_COLOR,
        });
    }
    bars
}

/// The precision-recall curves: each model in its method's colour, shorter codes lighter.
fn pr_series(evals: &[ModelEval]) -> Vec<Series> {
    evals
        .iter()
        .filter_map(|e| {
            let rr = e.report.retrieval.as_ref()?;
            let method = e.report.config.method;
            let mut lengths: Vec<usize> = evals
                .iter()
                .filter(|o| o.report.config.method == method)
                .filter_map(|o| Some(o.report.retrieval.as_ref()?.bits))
                .collect();
            lengths.sort_unstable();
            lengths.dedup();
            let step = lengths.iter().position(|&b| b == rr.bits).unwrap_or(0);
            Some(Series {
                name: format!("{} {} bits", method.label(), rr.bits),
                points: rr
                    .pr_curve
                    .iter()
                    .map(|p| (p.recall, p.precision))
                    .collect(),
                color: shade(method_color(method), step, lengths.len()),
                markers: false,
                thin: false,
            })
        })
        .collect()
}

/// Writes the plots that the evaluations support; returns their paths: `map_vs_bits.png`
/// (several code lengths) or `map_by_method.png` (bars, one code length), `pr_curves.png`,
/// `weights_vs_area.png` and `dynamics_<model>.png`.
pub fn write_plots(
    dir: &Path,
    evals: &[ModelEval],
    cosine: Option<f64>,
    shares: Option<&SharePoints>,
    r: usize,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let points = map_points(evals);
    let bits: Vec<usize> = points.iter().map(|p| p.bits).collect();
    let ticks = bit_ticks(&bits);
    let ylabel = format!("mAP@{r}");
    if ticks.len() > 1 {
        let (lo, hi) = (ticks[0].0, ticks[ticks.len() - 1].0);
        let pad = (hi - lo) * 0.08;
        let x = (lo - pad)..(hi + pad);
        let series = map_series(&points, cosine, &x);
        let path = dir.join("map_vs_bits.png");
        line_chart(
            &path,
            &Axes {
                title: &format!("mAP@{r} vs code length"),
                x_label: "bits",
                y_label: &ylabel,
                x,
                y: 0.0..1.0,
                x_ticks: Ticks::At(ticks),
            },
            &series,
        )?;
        written.push(path);
    } else if let Some(p) = points.first() {
        let path = dir.join("map_by_method.png");
        bar_chart(
            &path,
            &format!("mAP@{r} at {} bits", p.bits),
            &ylabel,
            &map_bars(&points, cosine),
        )?;
        written.push(path);
    }
    let series = pr_series(evals);
    if !series.is_empty() {
        let path = dir.join("pr_curves.png");
        line_chart(
            &path,
            &Axes {
                title: "Precision-recall by Hamming radius",
                x_label: "recall",
                y_label: "precision",
                x: 0.0..1.0,
                y: 0.0..1.0,
                x_ticks: Ticks::Auto,
            },
            &series,
        )?;
        written.push(path);
    }
    if let Some(s) = shares {
        let groups: Vec<Series> = s
            .groups
            .iter()
            .enumerate()
            .map(|(i, (k, pts))| Series {
                name: if *k >= 4 {
                    "4+ labels".into()
                } else {
                    format!("{k} labels")
                },
                points: pts.clone(),
                color: PALETTE[i % PALETTE.len()],
                markers: true,
                thin: false,
            })
            .collect();
        let path = dir.join("weights_vs_area.png");
        scatter_chart(
            &path,
            &Axes {
                title: "Learned ICS weight vs true area share (training images)",
                x_label: "area share of the label's instance",
                y_label: "learned weight",
                x: 0.0..1.0,
                y: 0.0..1.0,
                x_ticks: Ticks::Auto,
            },
            &groups,
        )?;
        written.push(path);
    }
    for e in evals {
        if let Some(path) = dynamics_plot(dir, e)? {
            written.push(path);
        }
    }
    Ok(written)
}

/// The per-epoch weight diagnostics of one model (`dynamics_<name>.png`): normalised weight
/// entropy (mean and spread), the per-label loss range over `lambda_r`, agreement with the
/// true areas where known and mAP on the epochs it was computed. None without diagnostics.
fn dynamics_plot(dir: &Path, e: &ModelEval) -> Result<Option<PathBuf>> {
    let h = &e.report.epochs;
    let d: Vec<(f64, &WeightDiagnostics)> = h
        .iter()
        .filter_map(|l| Some((l.epoch as f64, l.diagnostics.as_ref()?)))
        .filter(|(_, d)| d.images > 0)
        .collect();
    if d.is_empty() {
        return Ok(None);
    }
    let lambda_r = e.report.config.lambda_r;
    let mut series = Vec::new();
    let mut add = |name: &str, points: Vec<(f64, f64)>, thin: bool| {
        if !points.is_empty() {
            let color = PALETTE[series.len() % PALETTE.len()];
            series.push(Series {
                name: name.to_string(),
                points,
                color,
                markers: true,
                thin,
            });
        }
    };
    add(
        "weight entropy H/ln|L| (mean)",
        d.iter().map(|(x, d)| (*x, d.entropy_mean)).collect(),
        false,
    );
    add(
        "weight entropy (std)",
        d.iter().map(|(x, d)| (*x, d.entropy_std)).collect(),
        true,
    );
    add(
        "loss range / lambda_r",
        d.iter()
            .map(|(x, d)| (*x, d.loss_range_mean / lambda_r))
            .collect(),
        true,
    );
    add(
        "Spearman vs areas",
        d.iter()
            .filter_map(|(x, d)| Some((*x, d.spearman?)))
            .collect(),
        false,
    );
    add(
        "top-1 vs areas",
        d.iter().filter_map(|(x, d)| Some((*x, d.top1?))).collect(),
        false,
    );
    add(
        "mAP",
        h.iter()
            .filter_map(|l| Some((l.epoch as f64, l.map?)))
            .collect(),
        false,
    );
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.05;
    let ymin = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::min);
    let last = h.last().map_or(1.0, |l| l.epoch as f64);
    let path = dir.join(format!("dynamics_{}.png", e.name));
    line_chart(
        &path,
        &Axes {
            title: &format!("{}: weights per epoch (lambda_r = {lambda_r})", e.name),
            x_label: "epoch",
            y_label: "value",
            x: 0.5..last + 0.5,
            y: ymin..ymax,
            x_ticks: Ticks::Whole,
        },
        &series,
    )?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ics_train::eval::{RetrievalReport, TrainReport};
    use ics_train::ics::synthetic::make;
    use ics_train::ics::{train_silently, TrainConfig};

    /// An evaluation of a tiny `method` model of `bits` bits with the given mAP.
    fn evaluation(method: Method, bits: usize, map: f64) -> ModelEval {
        let data = make(20, 4, 2, 1, 0.3, 1);
        let config = TrainConfig {
            bits,
            method,
            hidden: vec![],
            epochs: 2,
            warmup_epochs: 1,
            ..TrainConfig::default()
        };
        let model = train_silently(data.features.view(), data.labels.view(), &config).unwrap();
        let mut report = TrainReport::new(&model);
        report.retrieval = Some(RetrievalReport {
            bits,
            r: 100,
            queries: 1,
            database: 1,
            map_at_r: map,
            precision_within_radius2: 0.25,
            pr_curve: (0..=bits)
                .map(|i| ics_train::eval::pr::PrPoint {
                    radius: i,
                    precision: 1.0 - i as f64 / bits as f64 * 0.7,
                    recall: i as f64 / bits as f64,
                })
                .collect(),
            random_codes_map_at_r: 0.1,
            cosine_map_at_r: None,
            tie_rule: ics_train::eval::TIE_RULE.into(),
        });
        ModelEval {
            name: format!("{}{bits}", method.prefix()),
            file: None,
            report,
        }
    }

    #[test]
    fn code_length_ticks_are_whole_bits() {
        let t = bit_ticks(&[64, 16, 32, 32]);
        let labels: Vec<&str> = t.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["16", "32", "64"]);
        assert_eq!(t.iter().map(|t| t.0).collect::<Vec<_>>(), [4.0, 5.0, 6.0]);
        let t = bit_ticks(&[16, 24, 32, 48]);
        let labels: Vec<&str> = t.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["16", "24", "32", "48"]);
    }

    #[test]
    fn round_ticks() {
        let labels = |t: Vec<(f64, String)>| t.into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(
            labels(nice_ticks(0.0, 1.0, 10, false)),
            ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]
        );
        // Epochs: whole numbers only, even on a short run.
        assert_eq!(labels(nice_ticks(0.5, 2.5, 12, true)), ["1", "2"]);
        assert_eq!(
            labels(nice_ticks(0.5, 30.5, 12, true)),
            ["5", "10", "15", "20", "25", "30"]
        );
    }

    #[test]
    fn each_method_has_its_own_colour_in_every_plot() {
        let colours = [Method::Ics, Method::Csq, Method::Orthohash].map(method_color);
        assert!(colours[0] != colours[1] && colours[1] != colours[2] && colours[0] != colours[2]);
        assert!(!colours.contains(&RANDOM_COLOR) && !colours.contains(&COSINE_COLOR));
        let x = 0.0..1.0;
        let colour_of = |evals: &[ModelEval], name: &str| {
            let series = map_series(&map_points(evals), Some(0.3), &x);
            series.iter().find(|s| s.name == name).map(|s| s.color)
        };
        let ics = evaluation(Method::Ics, 16, 0.5);
        let csq = evaluation(Method::Csq, 16, 0.4);
        let both = [csq, ics];
        assert_eq!(colour_of(&both, "ICS"), Some(method_color(Method::Ics)));
        assert_eq!(colour_of(&both, "CSQ"), Some(method_color(Method::Csq)));
        assert_eq!(
            colour_of(&both[1..], "ICS"),
            Some(method_color(Method::Ics))
        );
        // PR curves and bars too; shorter codes of a method are lighter shades of its colour.
        let evals = [
            evaluation(Method::Ics, 16, 0.5),
            evaluation(Method::Ics, 32, 0.6),
            evaluation(Method::Csq, 32, 0.4),
        ];
        let pr = pr_series(&evals);
        assert_eq!(pr[1].color, method_color(Method::Ics));
        assert_eq!(pr[2].color, method_color(Method::Csq));
        assert_eq!(pr[0].color, shade(method_color(Method::Ics), 0, 2));
        assert_ne!(pr[0].color, pr[1].color);
        let bars = map_bars(&map_points(&both), None);
        let names: Vec<&str> = bars.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["CSQ", "ICS", "random codes"]);
        assert_eq!(bars[1].color, method_color(Method::Ics));
    }

    #[test]
    fn one_code_length_gives_bars_several_give_lines() {
        if init_font(None).is_err() {
            eprintln!("no plot font ({DEFAULT_FONT}): skipped");
            return;
        }
        let dir = std::env::temp_dir().join(format!("ics-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = [
            evaluation(Method::Ics, 32, 0.5),
            evaluation(Method::Csq, 32, 0.4),
        ];
        let written = write_plots(&dir, &one, Some(0.3), None, 100).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.contains(&"map_by_method.png".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"map_vs_bits.png".to_string()), "{names:?}");
        let several = [
            evaluation(Method::Ics, 16, 0.5),
            evaluation(Method::Ics, 64, 0.6),
        ];
        let written = write_plots(&dir, &several, None, None, 100).unwrap();
        assert!(written.iter().any(|p| p.ends_with("map_vs_bits.png")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
