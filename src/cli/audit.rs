//! `cucn audit`: the most suspicious training labels by learned uncertainty and disagreement.

use std::path::PathBuf;

use burn::tensor::Device;
use cucn::audit::{AuditRequest, audit};
use cucn::data::DatasetFormat;

/// Arguments of `cucn audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Run directory of the trained model.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: DatasetFormat,
    /// Dataset root.
    #[arg(long)]
    pub data: PathBuf,
    /// Alternative (e.g. noisy) training label list.
    #[arg(long)]
    pub label_file: Option<PathBuf>,
    /// Clean label list to score the audit against (default: synth_meta.csv in the data root).
    #[arg(long)]
    pub clean_label_file: Option<PathBuf>,
    /// Samples shown in the contact sheet.
    #[arg(long, default_value_t = 32)]
    pub top: usize,
    /// Output folder (default RUN/audit).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cucn audit`.
pub fn run(args: &AuditArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.run.join("audit"));
    let req = AuditRequest {
        run: args.run.clone(),
        format: args.format,
        data: args.data.clone(),
        label_file: args.label_file.clone(),
        clean_labels: args.clean_label_file.clone(),
        top: args.top,
        out: out.clone(),
    };
    let summary = audit(&req, &Device::default())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "audited {} training samples; wrote {}/audit.csv and audit_top.png",
        summary.samples,
        out.display()
    );
    if let (Some(truth), Some(flipped), Some(d)) =
        (&summary.ground_truth, summary.flipped, &summary.detection)
    {
        println!("ground truth {truth}: {flipped} flipped labels");
        print!("{}", d.to_markdown());
    }
    Ok(())
}
