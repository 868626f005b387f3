//! `nqs plot`: a PNG of a run's history — energy per iteration with error bars and the exact
//! reference, and the variance on a log axis.

use crate::error::{Error, Result};
use crate::io::open_nqs_file;
use plotters::prelude::*;
use std::path::Path;

/// Fonts tried for the labels (Debian's fonts-dejavu-core first).
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        FONTS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Runtime(format!("nqs plot needs a TrueType font for its labels; install fonts-dejavu-core (looked for {})", FONTS.join(", "))))
    }
}

/// The finite part of a run's history.
struct Series {
    iteration: Vec<f64>,
    energy: Vec<f64>,
    error: Vec<f64>,
    variance: Vec<f64>,
    exact: Option<f64>,
}

/// Reads the history of a run file, keeping the iterations whose energy is finite.
fn read_series(input: &Path) -> Result<Series> {
    let file = open_nqs_file(input)?;
    let history = file.group("history").map_err(|_| {
        Error::file(
            input,
            "no history: not a run file (ed and tomography files have no iteration history)",
        )
    })?;
    let read = |name: &str| -> Result<Vec<f64>> {
        crate::io::read_1d::<f64>(&history, name)
            .map_err(|e| Error::bad_hdf5(input, &format!("history/{name}"), e))
    };
    let (it, energy, error, variance) = (
        read("iteration")?,
        read("energy")?,
        read("error")?,
        read("variance")?,
    );
    let rows = it.len();
    if [energy.len(), error.len(), variance.len()] != [rows; 3] {
        return Err(Error::file(input, "history columns of different lengths"));
    }
    let keep: Vec<usize> = (0..rows)
        .filter(|&k| it[k].is_finite() && energy[k].is_finite())
        .collect();
    if keep.is_empty() {
        return Err(Error::file(
            input,
            "the history has no finite energy to plot",
        ));
    }
    let pick = |v: &[f64]| keep.iter().map(|&k| v[k]).collect::<Vec<f64>>();
    let exact = file
        .group("exact")
        .ok()
        .and_then(|g| crate::io::read_attr::<f64>(&g, "energy").ok())
        .filter(|e| e.is_finite());
    Ok(Series {
        iteration: pick(&it),
        energy: pick(&energy),
        error: pick(&error)
            .into_iter()
            .map(|e| if e.is_finite() { e.abs() } else { 0.0 })
            .collect(),
        variance: pick(&variance),
        exact,
    })
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A drawing's result as the program's error, naming the file.
fn drawn(output: &Path, result: DrawResult) -> Result<()> {
    result.map_err(|e| {
        Error::Runtime(format!(
            "{}: cannot draw the plot: {}",
            output.display(),
            crate::error::shorten(&e.to_string())
        ))
    })
}
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Energy with error bars and the exact line; the last 90% of the run and the exact value set
/// the scale.
fn draw_energy(area: &Area, s: &Series, x_max: f64) -> DrawResult {
    let tail = &s.energy[s.energy.len() / 10..];
    let mut lo = tail.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = tail.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(e) = s.exact {
        lo = lo.min(e);
        hi = hi.max(e);
    }
    let pad = ((hi - lo) * 0.1).max(1e-9 * lo.abs().max(1.0));
    let mut chart = ChartBuilder::on(area)
        .caption("energy", ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("E")
        .draw()?;
    chart.draw_series(
        s.iteration
            .iter()
            .zip(&s.energy)
            .zip(&s.error)
            .map(|((&x, &e), &d)| ErrorBar::new_vertical(x, e - d, e, e + d, BLUE.filled(), 3)),
    )?;
    if let Some(e) = s.exact {
        chart
            .draw_series(LineSeries::new(
                [(0.0, e), (x_max, e)],
                BLACK.stroke_width(2),
            ))?
            .label(format!("exact {e:.6}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// The positive finite variances on a log axis of at most 30 decades (or a note when there are
/// none, as for an exact eigenstate).
fn draw_variance(area: &Area, s: &Series, x_max: f64) -> DrawResult {
    let positive: Vec<(f64, f64)> = s
        .iteration
        .iter()
        .zip(&s.variance)
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(&x, &v)| (x, v))
        .collect();
    if positive.is_empty() {
        area.draw(&Text::new(
            "no positive finite variance to draw (an exact eigenstate?)",
            (60, 120),
            ("sans-serif", 20),
        ))?;
        return Ok(());
    }
    let vmax = positive.iter().map(|p| p.1).fold(0.0, f64::max);
    let vmin = positive
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .max(vmax * 1e-30);
    let vmax = vmax.max(vmin * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption("variance", ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (vmin..vmax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("Var E")
        .draw()?;
    chart.draw_series(LineSeries::new(positive, RED.stroke_width(2)))?;
    Ok(())
}

/// Draws `input`'s history into the PNG `output` (an existing PNG only with `force`).
///
/// Only finite values are drawn: iterations with a non-finite energy are skipped, the variance
/// panel shows the positive finite variances (and says so when there are none).
pub fn plot_run(input: &Path, output: &Path, force: bool) -> Result<()> {
    if !output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        return Err(Error::usage(
            "--output",
            format!("{}: the plot is a PNG; name it *.png", output.display()),
        ));
    }
    crate::io::prepare_output(output, force, "nqs plot -o")?;
    let series = read_series(input)?;
    register_font()?;
    let draw = || -> DrawResult {
        let root = BitMapBackend::new(output, (900, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(420);
        let x_max = series.iteration.iter().copied().fold(1.0, f64::max);
        draw_energy(&top, &series, x_max)?;
        draw_variance(&bottom, &series, x_max)?;
        root.present()?;
        Ok(())
    };
    drawn(output, draw())
}

/// The dispersion of `nqs spectrum`: variational energies with error bars, the exact sector
/// energies and (Heisenberg chains) the des Cloizeaux–Pearson lower edge, against k/π
/// (first momentum component).
pub fn plot_spectrum(report: &crate::job::spectrum::SpectrumReport, output: &Path) -> Result<()> {
    register_font()?;
    let length = report.extent.first().copied().unwrap_or(1).max(1) as f64;
    let k = |m: &[usize]| 2.0 * m.first().copied().unwrap_or(0) as f64 / length;
    let mut values: Vec<f64> = report
        .sectors
        .iter()
        .flat_map(|s| {
            let e = s.energy.map(|e| [e.mean - e.error, e.mean + e.error]);
            e.into_iter().flatten().chain(s.exact)
        })
        .chain(
            report
                .edge
                .iter()
                .flat_map(|e| [e.ground, e.ground + e.velocity]),
        )
        .filter(|v| v.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    let (lo, hi) = match (values.first(), values.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Err(Error::Runtime("nothing to plot".into())),
    };
    let pad = 0.05 * (hi - lo).max(1e-6);
    let parities = report.sectors.iter().any(|s| s.spin_inversion.is_some());
    let draw = || -> DrawResult {
        let root = BitMapBackend::new(output, (900, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "lowest energy per momentum{} sector, N = {}",
                    if parities { " and parity" } else { "" },
                    report.n_sites
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.05f64..2.0, (lo - pad)..(hi + pad))?;
        chart.configure_mesh().x_desc("k / π").y_desc("E").draw()?;
        if let Some(edge) = report.edge {
            let curve = (0..=400).map(|i| {
                let x = 2.0 * f64::from(i) / 400.0;
                (x, edge.at(std::f64::consts::PI * x))
            });
            chart
                .draw_series(LineSeries::new(curve, BLACK.mix(0.5)))?
                .label("des Cloizeaux–Pearson edge")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        }
        let exact: Vec<(f64, f64)> = report
            .sectors
            .iter()
            .filter_map(|s| s.exact.map(|e| (k(&s.momentum), e)))
            .collect();
        chart
            .draw_series(exact.iter().map(|&p| Cross::new(p, 7, RED.stroke_width(2))))?
            .label("exact (ED / Bethe)")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, RED.stroke_width(2)));
        // Blue: no parity or z = +1; magenta: z = −1.
        for (odd, label) in [
            (
                false,
                if parities {
                    "projected RBM, z = +1"
                } else {
                    "projected RBM"
                },
            ),
            (true, "projected RBM, z = −1"),
        ] {
            let vmc: Vec<(f64, f64, f64)> = report
                .sectors
                .iter()
                .filter(|s| (s.spin_inversion == Some(-1)) == odd)
                .filter_map(|s| s.energy.map(|e| (k(&s.momentum), e.mean, e.error)))
                .collect();
            if vmc.is_empty() {
                continue;
            }
            let style = if odd { MAGENTA } else { BLUE }.filled();
            chart.draw_series(
                vmc.iter()
                    .map(|&(x, y, e)| ErrorBar::new_vertical(x, y - e, y, y + e, style, 6)),
            )?;
            chart
                .draw_series(vmc.iter().map(|&(x, y, _)| Circle::new((x, y), 4, style)))?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    drawn(output, draw())
}
