//! `cucn train`: flags over a config file over a preset over the defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use burn::tensor::Device;
use cucn::data::DatasetFormat;
use cucn::train::{ClassWeights, Preset, TrainConfig, TrainOptions, checkpoint};

/// Arguments of `cucn train`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrainArgs {
    /// TOML configuration (sections data, model, train, optim); flags override its keys.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Settings from the literature: rafdb (RUL) or affectnet (the paper).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: Option<DatasetFormat>,
    /// Dataset root folder (or file, for FER2013).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run directory to create.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// RAF-DB: alternative training label list (e.g. a noisy-label protocol file).
    #[arg(long)]
    pub label_file: Option<PathBuf>,
    /// 7 or 8 classes (AffectNet, FERPlus, folders).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Input size in pixels.
    #[arg(long)]
    pub size: Option<usize>,
    /// ResNet depth: 18, 34 or 50.
    #[arg(long)]
    pub depth: Option<usize>,
    /// No CBAM (the "ResNet18+W" ablation).
    #[arg(long)]
    pub no_cbam: bool,
    /// No uncertainty-weighted mixing (the plain baseline).
    #[arg(long)]
    pub no_mix: bool,
    /// none | inverse | inverse-sqrt | effective | W1,...,WK
    #[arg(long)]
    pub class_weights: Option<ClassWeights>,
    /// PyTorch backbone checkpoint (.pth/.pt).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Learning rate of backbone and head.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate of the classifier.
    #[arg(long)]
    pub fc_lr: Option<f64>,
    /// Seed of everything random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Input pipeline worker threads.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Skip bad samples (listed in RUN_DIR/skipped.csv) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Devices to train on, comma-separated: cuda:N or N (GPU N, needs `--features cuda`), cpu.
    /// The first holds the model; every batch is split over all of them (data parallel)
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    /// The configuration these arguments describe.
    pub fn resolve(&self) -> anyhow::Result<TrainConfig> {
        let mut c = match (&self.resume, self.preset) {
            (Some(run), _) => {
                let dir = checkpoint::usable(&run.join("checkpoints").join("last"))
                    .with_context(|| format!("{}: no checkpoint to resume from", run.display()))?;
                checkpoint::read_state(&dir)?.config
            }
            (None, Some(p)) => p.config(),
            (None, None) => TrainConfig::default(),
        };
        if let Some(path) = &self.config {
            c = TrainConfig::from_toml_file(path, c)?;
        }
        macro_rules! set {
            ($field:expr, $flag:expr) => {
                if let Some(v) = $flag.clone() {
                    $field = v;
                }
            };
        }
        set!(c.data.format, self.format.map(Some));
        set!(c.data.path, self.data.clone().map(Some));
        set!(c.data.label_file, self.label_file.clone().map(Some));
        set!(c.data.classes, self.classes.map(Some));
        set!(c.train.epochs, self.epochs);
        set!(c.train.batch, self.batch);
        set!(c.model.input_size, self.size);
        set!(c.model.depth, self.depth);
        set!(c.train.class_weights, self.class_weights);
        set!(c.model.pretrained, self.pretrained.clone().map(Some));
        set!(c.optim.lr, self.lr);
        set!(c.optim.fc_lr, self.fc_lr);
        set!(c.train.seed, self.seed);
        set!(c.train.workers, self.workers);
        if self.no_cbam {
            c.model.cbam = false;
        }
        if self.no_mix {
            c.train.mix = false;
        }
        if self.skip_bad {
            c.data.skip_bad = true;
        }
        c.check_preset(self.preset)?;
        Ok(c)
    }
}

/// Runs `cucn train`.
pub fn run(args: &TrainArgs, interrupt: Arc<AtomicBool>) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let out = match (&args.resume, &args.out) {
        (Some(r), Some(o)) if r != o => anyhow::bail!(
            "--resume {} and --out {} name different runs",
            r.display(),
            o.display()
        ),
        (Some(r), _) => r.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => anyhow::bail!("--out RUN_DIR is required (or --resume RUN_DIR)"),
    };
    let mut devices = match &args.devices {
        Some(list) => cucn::device::parse_devices(list)?,
        None => vec![Device::default()],
    };
    let device = devices.remove(0);
    let opts = TrainOptions {
        out,
        resume: args.resume.is_some(),
        quiet: args.quiet,
        interrupt: Some(interrupt),
        device,
        replicas: devices,
    };
    let summary = cucn::train::train(config, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary.last)?);
    } else if !args.quiet {
        println!(
            "done: {} epochs, best test accuracy {:.2}% (epoch {}), run in {}",
            summary.last.epoch,
            100.0 * summary.best.0,
            summary.best.1,
            summary.run_dir.display()
        );
    }
    Ok(())
}
