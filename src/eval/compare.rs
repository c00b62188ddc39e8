//! Comparison of runs: Table II of the paper as Markdown (method, dataset, max/min class accuracy,
//! accuracy, plus mean class accuracy and macro-F1) and one chart overlaying their per-class
//! accuracy (Fig. 4).

use std::fmt::Write as _;
use std::path::Path;

use super::report::{Report, escape_cell, percent};
use super::{EvalError, plots, write_output};

/// One run in a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    /// Method name shown in the table and the legend (for example the run directory's name).
    pub method: String,
    /// Dataset the run was evaluated on.
    pub dataset: String,
    /// The run's evaluation report.
    pub report: Report,
}

/// Table II as Markdown, one row per run in the given order; values in percent.
pub fn compare_markdown(rows: &[CompareRow]) -> String {
    let mut md = String::from(
        "| method | dataset | max acc (%) | min acc (%) | accuracy (%) | mean class acc (%) | macro-F1 (%) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let r = &row.report;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            escape_cell(&row.method),
            escape_cell(&row.dataset),
            percent(r.max_class_accuracy),
            percent(r.min_class_accuracy),
            percent(r.accuracy),
            percent(r.mean_class_accuracy),
            percent(r.macro_f1)
        );
    }
    md
}

/// Per-class accuracy chart overlaying all runs; they must share the same class list.
pub fn compare_chart(rows: &[CompareRow], title: &str) -> Result<Vec<u8>, EvalError> {
    let first = rows
        .first()
        .ok_or_else(|| EvalError::Input("nothing to compare: no runs".into()))?;
    if let Some(other) = rows
        .iter()
        .find(|r| r.report.classes != first.report.classes)
    {
        return Err(EvalError::Input(format!(
            "runs {:?} and {:?} have different classes ({} vs {})",
            first.method,
            other.method,
            first.report.classes.join(", "),
            other.report.classes.join(", ")
        )));
    }
    let runs = rows
        .iter()
        .map(|row| Ok((row.method.clone(), row.report.class_accuracies()?)))
        .collect::<Result<Vec<_>, EvalError>>()?;
    let names: Vec<&str> = first.report.classes.iter().map(String::as_str).collect();
    plots::per_class_chart(&runs, &names, title)
}

/// Writes `comparison.md` (the table and a link to the chart) and `per_class.png` into `dir`.
pub fn write_comparison(rows: &[CompareRow], dir: &Path) -> Result<(), EvalError> {
    let chart = compare_chart(rows, "Per-class accuracy")?;
    let markdown = format!(
        "# Comparison\n\n{}\n![per-class accuracy](per_class.png)\n",
        compare_markdown(rows)
    );
    write_output(&dir.join("comparison.md"), markdown.as_bytes())?;
    write_output(&dir.join("per_class.png"), &chart)
}
