//! `cucn export`: a trained model to safetensors with torchvision-style names.

use std::path::PathBuf;

use burn::tensor::Device;
use cucn::model::weights::{export_safetensors, load_model};

/// Arguments of `cucn export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Run directory (its best checkpoint) or a cucn model file (.bpk).
    #[arg(long)]
    pub model: PathBuf,
    /// Output safetensors file.
    #[arg(long)]
    pub to: PathBuf,
}

/// Runs `cucn export`.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let device = Device::default();
    let path = cucn::model_file(&args.model)?;
    let (model, config) = load_model(&path, &device)?;
    export_safetensors(&model, &config, &args.to)?;
    println!("wrote {}", args.to.display());
    Ok(())
}
