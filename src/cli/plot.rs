//! `nasc plot`: the predicted-vs-measured scatter plot of a rows CSV, without pricing anything
//! again (`nasc validate --rows-out` writes one; any CSV with the two columns will do).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Options of `nasc plot`.
#[derive(Args, Debug)]
pub struct Options {
    /// A CSV with a header and a column of measured and one of predicted values, e.g. the
    /// `arch,measured_ms,predicted_ms,error_pct` rows of `nasc validate --rows-out`.
    rows: PathBuf,
    /// Where to draw it: SVG or PNG, after the extension.
    #[arg(long, short, value_name = "FILE.svg|png")]
    output: PathBuf,
    /// The column of measured values.
    #[arg(long, default_value = "measured_ms")]
    measured: String,
    /// The column of predicted values.
    #[arg(long, default_value = "predicted_ms")]
    predicted: String,
    /// The plot's title (default: the rows file's name).
    #[arg(long)]
    title: Option<String>,
}

pub fn run(o: Options) -> Result<()> {
    nasc::validate::plot_is_png(&o.output)?;
    let bytes = std::fs::read(&o.rows).with_context(|| format!("{}: cannot read", o.rows.display()))?;
    let (measured, predicted) = read_columns(&bytes, &o.rows.display().to_string(), &o.measured, &o.predicted)?;
    let title = o.title.unwrap_or_else(|| {
        o.rows.file_name().map_or_else(|| o.rows.display().to_string(), |n| n.to_string_lossy().into_owned())
    });
    nasc::validate::plot(&o.output, &predicted, &measured, &title)?;
    let v = nasc::costmodel::calibrate::Validation::of(&predicted, &measured);
    super::emit(&format!(
        "{} rows, Spearman {:.4}, MAPE {:.1} %, within ±10 % {:.1} %; wrote {}\n",
        v.rows,
        v.spearman,
        v.mape,
        100.0 * v.within_10,
        o.output.display()
    ))
}

/// The two columns of a rows CSV, as positive numbers; errors name the file and line.
fn read_columns(bytes: &[u8], origin: &str, measured: &str, predicted: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = r.headers().with_context(|| format!("{origin}: no CSV header"))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{origin}: no column `{name}` (columns: {}); choose one with --measured/--predicted",
                header.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (mi, pi) = (column(measured)?, column(predicted)?);
    let (mut m, mut p) = (Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{origin}:{line}: not a CSV row"))?;
        let value = |k: usize, name: &str| -> Result<f64> {
            let text = rec.get(k).unwrap_or("");
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .with_context(|| format!("{origin}:{line}: {name} `{}` is not a positive number", text.escape_debug()))
        };
        m.push(value(mi, measured)?);
        p.push(value(pi, predicted)?);
    }
    if m.is_empty() {
        bail!("{origin}: no rows");
    }
    Ok((m, p))
}
