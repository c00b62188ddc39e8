//! `cucn bench`: training and inference throughput of the network, and peak memory.

use anyhow::Context;
use burn::tensor::Device;
use cucn::bench::{BenchConfig, BenchReport};

/// Arguments of `cucn bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Input side in pixels; repeat for several (default: 112 and 224).
    #[arg(long = "size", value_name = "PX")]
    pub sizes: Vec<usize>,
    /// Batch of the training step and of batched inference (at least 2).
    #[arg(long, default_value_t = BenchConfig::default().batch)]
    pub batch: usize,
    /// Timed runs per measurement; the median is reported.
    #[arg(long, default_value_t = BenchConfig::default().steps)]
    pub steps: usize,
    /// Untimed runs before each measurement.
    #[arg(long, default_value_t = BenchConfig::default().warmup)]
    pub warmup: usize,
    /// Worker threads of the CPU backend (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but the results (no progress lines).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `cucn bench` on Burn's default device (`BURN_DEVICE=flex|cuda` chooses one).
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("cannot set the number of threads")?;
    }
    let defaults = BenchConfig::default();
    let config = BenchConfig {
        sizes: if args.sizes.is_empty() {
            defaults.sizes.clone()
        } else {
            args.sizes.clone()
        },
        batch: args.batch,
        steps: args.steps,
        warmup: args.warmup,
        ..defaults
    };
    let device = Device::default();
    let quiet = args.quiet || args.json;
    let report = cucn::bench::run(&config, &device, &mut |phase| {
        if !quiet {
            eprintln!("bench: {phase}");
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The report as a plain-text table.
fn table(report: &BenchReport) -> String {
    let mib = |m: Option<f64>| m.map_or("-".to_string(), |m| format!("{m:.0}"));
    let mut out = format!(
        "device {}, {} threads, cpu {}, load average {}\nmedian of {} runs after {} warm-up\n",
        report.device,
        report.threads,
        report.cpu.as_deref().unwrap_or("unknown"),
        report
            .load_average
            .map_or("unknown".to_string(), |[a, b, c]| format!(
                "{a:.2} {b:.2} {c:.2}"
            )),
        report.steps,
        report.warmup,
    );
    out.push_str("size  train img/s  eval img/s  eval b=1 ms  train peak MiB  eval peak MiB\n");
    for s in &report.sizes {
        out.push_str(&format!(
            "{:>4}  {:>11.1}  {:>10.1}  {:>11.1}  {:>14}  {:>13}\n",
            s.size,
            s.train.images_per_second,
            s.eval.images_per_second,
            s.eval_single.median_ms,
            mib(s.train_peak_rss_mib),
            mib(s.eval_peak_rss_mib),
        ));
    }
    for s in &report.sizes {
        let p = &s.train_phases;
        out.push_str(&format!(
            "{} px training step: forward {:.0} ms, backward {:.0} ms, optimizer {:.0} ms\n",
            s.size, p.forward_ms, p.backward_ms, p.optimizer_ms
        ));
    }
    out.push_str(&format!(
        "batch {}; process peak resident memory {} MiB (VmHWM, whole process)\n",
        report.sizes.first().map_or(0, |s| s.train.batch),
        mib(report.peak_rss_mib),
    ));
    out
}
