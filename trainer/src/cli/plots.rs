//! PNG plots (plotters, drawn into an RGB buffer, written with the `png` crate), and the
//! plots of an evaluation ([`write_plots`]: `eval` and `bench`).
//!
//! Text needs a TrueType font, loaded at run time (plotters' `ab_glyph` backend does no font
//! discovery): `--font FILE`, default DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use ics_train::eval::{ModelEval, SharePoints};
use ics_train::ics::WeightDiagnostics;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Debian `fonts-dejavu-core`.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The family name the font is registered under (for `(FAMILY, size)` text styles).
pub const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 900;
const HEIGHT: u32 = 600;

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

/// A palette that stays readable on white.
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

/// Axes of a chart.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: std::ops::Range<f64>,
    pub y: std::ops::Range<f64>,
    /// Where the legend goes (a corner the data leaves free).
    pub legend: SeriesLabelPosition,
}

/// The chart area every plot shares: a 2-D f64 cartesian chart on an RGB bitmap.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws a chart with `axes` (title, mesh, axis labels), lets `draw` add the series, adds the
/// legend and writes the PNG.
fn chart_png(path: &Path, axes: &Axes, draw: impl FnOnce(&mut Chart) -> Result<()>) -> Result<()> {
    init_font(None)?;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, (FAMILY, 24))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(axes.x.clone(), axes.y.clone())
            .map_err(draw_err)?;
        let (xs, ys) = (axes.x.end - axes.x.start, axes.y.end - axes.y.start);
        let xf = move |v: &f64| tick(*v, xs);
        let yf = move |v: &f64| tick(*v, ys);
        chart
            .configure_mesh()
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(axes.x_label)
            .y_desc(axes.y_label)
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .position(axes.legend.clone())
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FAMILY, 16))
            .draw()
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    write_rgb_png(path, &buf, WIDTH, HEIGHT)
}

/// A line chart with a legend.
pub fn line_chart(path: &Path, axes: &Axes, series: &[Series]) -> Result<()> {
    chart_png(path, axes, |chart| {
        for s in series {
            let style = ShapeStyle::from(&s.color).stroke_width(if s.thin { 1 } else { 3 });
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(draw_err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
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
    chart_png(path, axes, |chart| {
        let lo = axes.x.start.max(axes.y.start);
        let hi = axes.x.end.min(axes.y.end);
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, hi)],
                ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(1),
            ))
            .map_err(draw_err)?
            .label("y = x")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.mix(0.6)));
        for g in groups {
            let (solid, color) = (g.color, g.color.mix(0.35));
            chart
                .draw_series(g.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(draw_err)?
                .label(g.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, solid.filled()));
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

/// Writes the plots that the evaluations support; returns their paths.
pub fn write_plots(
    dir: &Path,
    evals: &[ModelEval],
    cosine: Option<f64>,
    shares: Option<&SharePoints>,
    r: usize,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    // mAP vs bits, one line per method.
    let mut by_method: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    let mut random: std::collections::BTreeMap<usize, f64> = Default::default();
    for e in evals {
        if let Some(rr) = &e.report.retrieval {
            by_method
                .entry(e.report.config.method.label())
                .or_default()
                .push((rr.bits as f64, rr.map_at_r));
            random.insert(rr.bits, rr.random_codes_map_at_r);
        }
    }
    if !by_method.is_empty() {
        let bits: Vec<f64> = random.keys().map(|&b| b as f64).collect();
        let (bmin, bmax) = (bits[0], *bits.last().expect("non-empty"));
        let span = (bmax - bmin).max(16.0);
        let x = (bmin - span * 0.08)..(bmax + span * 0.08);
        let mut series: Vec<Series> = by_method
            .into_iter()
            .enumerate()
            .map(|(i, (name, mut pts))| {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: name.to_string(),
                    points: pts,
                    color: PALETTE[i % PALETTE.len()],
                    markers: true,
                    thin: false,
                }
            })
            .collect();
        if let Some(c) = cosine {
            series.push(Series {
                name: "cosine, raw float features".into(),
                points: vec![(x.start, c), (x.end, c)],
                color: PALETTE[2],
                markers: false,
                thin: true,
            });
        }
        series.push(Series {
            name: "random codes".into(),
            points: random.iter().map(|(&b, &m)| (b as f64, m)).collect(),
            color: PALETTE[7],
            markers: true,
            thin: true,
        });
        let ylabel = format!("mAP@{r}");
        let path = dir.join("map_vs_bits.png");
        line_chart(
            &path,
            &Axes {
                title: &format!("mAP@{r} vs code length"),
                x_label: "bits",
                y_label: &ylabel,
                x,
                y: 0.0..1.0,
                legend: SeriesLabelPosition::UpperLeft,
            },
            &series,
        )?;
        written.push(path);
    }
    // PR curves by Hamming radius.
    let series: Vec<Series> = evals
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let rr = e.report.retrieval.as_ref()?;
            Some(Series {
                name: format!("{} {} bits", e.report.config.method.label(), rr.bits),
                points: rr
                    .pr_curve
                    .iter()
                    .map(|p| (p.recall, p.precision))
                    .collect(),
                color: PALETTE[i % PALETTE.len()],
                markers: false,
                thin: false,
            })
        })
        .collect();
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
                legend: SeriesLabelPosition::UpperRight,
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
                legend: SeriesLabelPosition::UpperLeft,
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
            legend: SeriesLabelPosition::UpperRight,
        },
        &series,
    )?;
    Ok(Some(path))
}
