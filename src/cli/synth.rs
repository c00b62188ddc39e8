//! `cucn synth`: generate the procedural benchmark, or draw its contact sheet.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use cucn::classes::NUM_BASIC;
use cucn::data::synth::{SynthConfig, contact_sheet, generate};
use indicatif::{ProgressBar, ProgressStyle};

/// Options of `cucn synth`.
#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Output directory (must be missing or empty); RAF-DB basic layout plus synth_meta.csv.
    #[arg(long, required_unless_present = "contact_sheet")]
    pub out: Option<PathBuf>,
    /// Number of training images.
    #[arg(long, default_value_t = SynthConfig::default().train)]
    pub train: usize,
    /// Number of test images.
    #[arg(long, default_value_t = SynthConfig::default().test)]
    pub test: usize,
    /// Image side in pixels (at least 32).
    #[arg(long, default_value_t = SynthConfig::default().size)]
    pub size: u32,
    /// Fraction of training labels flipped to another class at random (0..1).
    #[arg(long, default_value_t = SynthConfig::default().noise)]
    pub noise: f64,
    /// Fraction of faces blended between two expressions, labelled with the stronger (0..1).
    #[arg(long, default_value_t = SynthConfig::default().ambiguity)]
    pub ambiguity: f64,
    /// Make the test set class-balanced instead of following the training proportions.
    #[arg(long)]
    pub balanced_test: bool,
    /// Random seed; the same seed and options give byte-identical output.
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub seed: u64,
    /// Smallest expression intensity (0..1].
    #[arg(long, default_value_t = SynthConfig::default().intensity.0)]
    pub intensity_min: f32,
    /// Largest expression intensity (0..1].
    #[arg(long, default_value_t = SynthConfig::default().intensity.1)]
    pub intensity_max: f32,
    /// Class proportions: `rafdb` (RAF-DB's training set), `balanced`, or 7 comma-separated
    /// weights in the order surprise,fear,disgust,happiness,sadness,anger,neutral.
    #[arg(long, default_value = "rafdb")]
    pub proportions: String,
    /// Worker threads (default: all cores); the output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also (or only, without --out) draw a PNG grid of samples per class.
    #[arg(long, value_name = "FILE.png")]
    pub contact_sheet: Option<PathBuf>,
    /// Samples per class on the contact sheet.
    #[arg(long, default_value_t = 8)]
    pub per_class: usize,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl SynthArgs {
    /// The benchmark configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<SynthConfig> {
        let cfg = SynthConfig {
            train: self.train,
            test: self.test,
            size: self.size,
            noise: self.noise,
            ambiguity: self.ambiguity,
            balanced_test: self.balanced_test,
            seed: self.seed,
            intensity: (self.intensity_min, self.intensity_max),
            proportions: parse_proportions(&self.proportions)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

fn parse_proportions(text: &str) -> anyhow::Result<Vec<f64>> {
    match text {
        "rafdb" => Ok(SynthConfig::default().proportions),
        "balanced" => Ok(vec![1.0; NUM_BASIC]),
        list => {
            let weights = list
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<f64>()
                        .with_context(|| format!("--proportions: {w:?} is not a number"))
                })
                .collect::<anyhow::Result<Vec<f64>>>()?;
            if weights.len() != NUM_BASIC {
                bail!(
                    "--proportions needs {NUM_BASIC} weights, got {}",
                    weights.len()
                );
            }
            Ok(weights)
        }
    }
}

/// Runs `cucn synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let talk = !args.quiet && !args.json;
    if let Some(out) = &args.out {
        write_benchmark(&cfg, out, args, talk)?;
    }
    if let Some(sheet) = &args.contact_sheet {
        contact_sheet(&cfg, args.per_class, sheet)?;
        if talk {
            println!("wrote contact sheet {}", sheet.display());
        }
    }
    Ok(())
}

/// Generates the benchmark into `out` with a progress bar on a terminal, then reports.
fn write_benchmark(
    cfg: &SynthConfig,
    out: &Path,
    args: &SynthArgs,
    talk: bool,
) -> anyhow::Result<()> {
    let total = (cfg.train + cfg.test) as u64;
    let bar = if talk && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
                .expect("valid progress template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let summary = generate(cfg, out, args.threads, &|done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if talk {
        println!(
            "wrote {} training and {} test images of {} px to {} in {:.1} s ({:.0} images/s); \
             {} labels flipped, {} faces blended",
            summary.train,
            summary.test,
            summary.size,
            out.display(),
            summary.seconds,
            summary.images_per_second,
            summary.flipped,
            summary.blended,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_accept_names_and_lists() {
        assert_eq!(parse_proportions("balanced").unwrap(), vec![1.0; 7]);
        assert_eq!(parse_proportions("rafdb").unwrap()[3], 4772.0);
        assert_eq!(parse_proportions("1,2,3,4,5,6,7").unwrap()[6], 7.0);
        assert!(
            parse_proportions("1,2")
                .unwrap_err()
                .to_string()
                .contains("7 weights")
        );
        assert!(
            parse_proportions("1,x,3,4,5,6,7")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
    }
}
