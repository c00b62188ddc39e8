//! `cucn ablate`: the paper's Table II variants trained with the same seed and data, compared.

use std::path::PathBuf;

use burn::tensor::Device;
use cucn::data::DatasetFormat;
use cucn::demo::{DemoSize, demo_configs};
use cucn::eval::compare::compare_markdown;
use cucn::train::ClassWeights;

/// Arguments of `cucn ablate`.
#[derive(clap::Args, Debug)]
pub struct AblateArgs {
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: DatasetFormat,
    /// Dataset root.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder: one run per variant and the comparison.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs per variant (default: the demo's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Input size (default: the demo's).
    #[arg(long)]
    pub size: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed shared by all variants.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Class weights of the "+W" variants.
    #[arg(long, default_value = "inverse-sqrt")]
    pub class_weights: ClassWeights,
    /// Also the ResNet-50 pair (+W, +W+CBAM).
    #[arg(long)]
    pub resnet50: bool,
    /// Only the final table.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `cucn ablate`.
pub fn run(args: &AblateArgs) -> anyhow::Result<()> {
    let (_, mut base) = demo_configs(DemoSize::Full, &args.data);
    base.data.format = Some(args.format);
    base.train.seed = args.seed;
    if let Some(e) = args.epochs {
        base.train.epochs = e;
    }
    if let Some(s) = args.size {
        base.model.input_size = s;
    }
    if let Some(b) = args.batch {
        base.train.batch = b;
    }
    let say = |m: &str| {
        if !args.quiet {
            eprintln!("{m}");
        }
    };
    let rows = cucn::ablate::ablate(
        &base,
        &args.class_weights,
        args.resnet50,
        &args.out,
        args.quiet,
        &Device::default(),
        &say,
    )?;
    print!("{}", compare_markdown(&rows));
    Ok(())
}
