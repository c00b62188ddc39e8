//! Throughput of the network (`cucn bench`): training step, batched and single-image inference
//! at each input size, and peak memory. `scripts/bench_torch.py` measures the same network in
//! PyTorch with the same protocol, so `docs/PERFORMANCE.md` can set the two side by side.
//!
//! Protocol: ResNet-18 + CBAM + RUL head with fresh weights (the weights do not change the cost)
//! on random normalized images. A training step is forward with mixing, loss, backward and one
//! Adam step; inference is `predict` (softmax and uncertainty) on `model.valid()`. Each timing is
//! the median of `steps` runs after `warmup` untimed ones, with the device synchronized before
//! the clock stops.
//!
//! Memory is the resident set's high-water mark (`VmHWM` in `/proc/self/status`, Linux only):
//! it belongs to the whole process, so it includes the program and libraries. Before each phase
//! the mark is reset through `/proc/self/clear_refs` where the kernel allows it, which gives a
//! peak per phase; `peak_rss_mib` is the highest mark seen over the whole run.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::model::{Cucn, CucnConfig, ModelError, optim::OptimConfig};

/// What can go wrong measuring.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The network cannot be built with these settings.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Settings that cannot be measured (no sizes, no steps, a batch too small to train).
    #[error("bad benchmark settings: {0}")]
    Settings(String),
    /// The device failed while running.
    #[error("device error: {0}")]
    Device(String),
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Input sides in pixels.
    pub sizes: Vec<usize>,
    /// Batch of the training step and of batched inference (at least 2: BatchNorm trains on
    /// batch statistics).
    pub batch: usize,
    /// Timed runs per measurement (the median is reported).
    pub steps: usize,
    /// Untimed runs before each measurement.
    pub warmup: usize,
    /// Seed of the random images, labels and permutations.
    pub seed: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            sizes: vec![112, 224],
            batch: 32,
            steps: 5,
            warmup: 2,
            seed: 0,
        }
    }
}

/// Timings of one measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// Images per run.
    pub batch: usize,
    /// Median wall time of one run, milliseconds.
    pub median_ms: f64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// Slowest run, milliseconds.
    pub max_ms: f64,
    /// `batch / median`, images per second.
    pub images_per_second: f64,
}

impl Timing {
    /// Summarizes run times in seconds (at least one).
    fn from_seconds(batch: usize, mut seconds: Vec<f64>) -> Self {
        seconds.sort_by(f64::total_cmp);
        let n = seconds.len();
        let median = if n % 2 == 1 {
            seconds[n / 2]
        } else {
            0.5 * (seconds[n / 2 - 1] + seconds[n / 2])
        };
        Self {
            batch,
            median_ms: median * 1e3,
            min_ms: seconds[0] * 1e3,
            max_ms: seconds[n - 1] * 1e3,
            images_per_second: batch as f64 / median,
        }
    }
}

/// Where a training step's time goes: medians of each part, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainPhases {
    /// Forward pass and loss.
    pub forward_ms: f64,
    /// Backward pass and gradient collection.
    pub backward_ms: f64,
    /// Adam step.
    pub optimizer_ms: f64,
}

/// Measurements at one input size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeReport {
    /// Input side in pixels.
    pub size: usize,
    /// Training step (forward, loss, backward, Adam).
    pub train: Timing,
    /// The training step split into its parts.
    pub train_phases: TrainPhases,
    /// Batched inference.
    pub eval: Timing,
    /// Single-image inference (latency).
    pub eval_single: Timing,
    /// Peak resident memory during the training phase, MiB (process-wide; `None` where the
    /// mark cannot be read or reset).
    pub train_peak_rss_mib: Option<f64>,
    /// Peak resident memory during the inference phases, MiB (as above).
    pub eval_peak_rss_mib: Option<f64>,
}

/// A whole benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The device measured (Burn's name for it).
    pub device: String,
    /// Threads of the rayon pool the CPU backend computes on.
    pub threads: usize,
    /// CPU model, from `/proc/cpuinfo` where readable.
    pub cpu: Option<String>,
    /// 1, 5 and 15 minute load averages when the run started (other work on the machine makes
    /// the figures pessimistic).
    pub load_average: Option<[f64; 3]>,
    /// Timed runs per measurement.
    pub steps: usize,
    /// Untimed runs before each measurement.
    pub warmup: usize,
    /// One entry per input size, in the order asked.
    pub sizes: Vec<SizeReport>,
    /// Highest resident-memory mark of the process over the run, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Runs the benchmark on `device` (training on its autodiff twin), calling `progress` with a
/// short description before each phase.
pub fn run(
    config: &BenchConfig,
    device: &Device,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, BenchError> {
    if config.sizes.is_empty() {
        return Err(BenchError::Settings("no input size given".into()));
    }
    if config.steps == 0 {
        return Err(BenchError::Settings(
            "at least one timed step is needed".into(),
        ));
    }
    if config.batch < 2 {
        return Err(BenchError::Settings(format!(
            "batch {} is too small: training needs at least 2 images per batch",
            config.batch
        )));
    }
    let load_average = load_average();
    let mut memory = PeakMemory::new();
    let mut sizes = Vec::with_capacity(config.sizes.len());
    for &size in &config.sizes {
        let network = CucnConfig::new().with_input_size(size);
        // Checked here so that a bad size is an error, not a panic in the middle of a phase.
        network.init(device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ size as u64);

        progress(&format!("{size} px: training step, batch {}", config.batch));
        memory.start_phase();
        let (train, train_phases) = train_timing(&network, config, size, device, &mut rng)?;
        let train_peak_rss_mib = memory.end_phase();

        progress(&format!(
            "{size} px: inference, batch {} and 1",
            config.batch
        ));
        memory.start_phase();
        let model = network.init(device)?.valid();
        let eval = eval_timing(&model, config, config.batch, size, device, &mut rng)?;
        let eval_single = eval_timing(&model, config, 1, size, device, &mut rng)?;
        drop(model);
        let eval_peak_rss_mib = memory.end_phase();

        sizes.push(SizeReport {
            size,
            train,
            train_phases,
            eval,
            eval_single,
            train_peak_rss_mib,
            eval_peak_rss_mib,
        });
    }
    Ok(BenchReport {
        device: format!("{device:?}"),
        threads: rayon::current_num_threads(),
        cpu: cpu_model(),
        load_average,
        steps: config.steps,
        warmup: config.warmup,
        sizes,
        peak_rss_mib: memory.overall(),
    })
}

/// A batch of standard-normal images `[n, 3, size, size]` (what normalized photos look like
/// to the network's cost).
fn random_images(n: usize, size: usize, device: &Device, rng: &mut ChaCha8Rng) -> Tensor<4> {
    let values: Vec<f32> = (0..n * 3 * size * size)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 3, size, size]), device)
}

/// Waits until the device has finished every queued operation.
fn sync(device: &Device) -> Result<(), BenchError> {
    device
        .sync()
        .map_err(|e| BenchError::Device(format!("{e:?}")))
}

/// Times `warmup + steps` runs of `step`, keeping the last `steps`.
fn time_runs(
    config: &BenchConfig,
    device: &Device,
    mut step: impl FnMut() -> Result<(), BenchError>,
) -> Result<Vec<f64>, BenchError> {
    let mut seconds = Vec::with_capacity(config.steps);
    for i in 0..config.warmup + config.steps {
        let start = Instant::now();
        step()?;
        sync(device)?;
        if i >= config.warmup {
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(seconds)
}

/// Training steps as `cucn train` runs them: mixing on, class weights, Adam with two groups.
fn train_timing(
    network: &CucnConfig,
    config: &BenchConfig,
    size: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Result<(Timing, TrainPhases), BenchError> {
    let ad = device.clone().autodiff();
    let n = config.batch;
    let k = network.num_classes;
    let mut model = Some(network.init(&ad)?);
    let mut optim = OptimConfig::new().init(model.as_ref().expect("model is set"));
    let images = random_images(n, size, &ad, rng);
    let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..k as i64)).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &ad);
    let weights = Tensor::<1>::ones([k], &ad);
    // Seconds of (forward, backward, optimizer) of every step, warm-up included.
    let mut parts: Vec<[f64; 3]> = Vec::new();
    let seconds = time_runs(config, &ad, || {
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.rotate_left(1 + rng.random_range(0..n - 1));
        let perm = Tensor::<1, Int>::from_data(TensorData::new(order, [n]), &ad);
        let current: Cucn = model.take().expect("model is put back after every step");
        let start = Instant::now();
        let out =
            current.forward_train(images.clone(), targets.clone(), Some(perm), weights.clone());
        sync(&ad)?;
        let forward = start.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(out.loss.backward(), &current);
        sync(&ad)?;
        let backward = start.elapsed().as_secs_f64() - forward;
        model = Some(optim.step(current, grads));
        sync(&ad)?;
        parts.push([
            forward,
            backward,
            start.elapsed().as_secs_f64() - forward - backward,
        ]);
        Ok(())
    })?;
    let median_ms = |i: usize| {
        let timed = parts[config.warmup..].iter().map(|p| p[i]).collect();
        Timing::from_seconds(1, timed).median_ms
    };
    let phases = TrainPhases {
        forward_ms: median_ms(0),
        backward_ms: median_ms(1),
        optimizer_ms: median_ms(2),
    };
    Ok((Timing::from_seconds(n, seconds), phases))
}

/// Inference runs of `predict` on batches of `n` images, reading the outputs back.
fn eval_timing(
    model: &Cucn,
    config: &BenchConfig,
    n: usize,
    size: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Result<Timing, BenchError> {
    let images = random_images(n, size, device, rng);
    let seconds = time_runs(config, device, || {
        let prediction = model.predict(images.clone());
        // Reading the results back is part of what a caller pays for.
        prediction.probabilities.into_data();
        prediction.uncertainty.into_data();
        Ok(())
    })?;
    Ok(Timing::from_seconds(n, seconds))
}

/// Tracks the process's resident-memory high-water mark per phase and over the whole run.
struct PeakMemory {
    overall_kib: Option<u64>,
    phase_reset: bool,
}

impl PeakMemory {
    fn new() -> Self {
        Self {
            overall_kib: read_vm_hwm_kib(),
            phase_reset: false,
        }
    }

    fn note(&mut self, kib: Option<u64>) {
        self.overall_kib = self.overall_kib.max(kib);
    }

    /// Records the mark so far and resets it, if the kernel lets this process do so.
    fn start_phase(&mut self) {
        self.note(read_vm_hwm_kib());
        // "5" resets the peak resident set size (Linux 4.0+, proc(5)).
        self.phase_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    }

    /// The phase's peak in MiB, `None` when the mark could not be reset or read.
    fn end_phase(&mut self) -> Option<f64> {
        let kib = read_vm_hwm_kib();
        self.note(kib);
        self.phase_reset.then_some(kib).flatten().map(kib_to_mib)
    }

    fn overall(&mut self) -> Option<f64> {
        self.note(read_vm_hwm_kib());
        self.overall_kib.map(kib_to_mib)
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `VmHWM` (peak resident set) of this process in KiB, from `/proc/self/status`.
fn read_vm_hwm_kib() -> Option<u64> {
    parse_vm_hwm_kib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmHWM:   123456 kB` line of a `/proc/<pid>/status` text.
fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// The three load averages of `/proc/loadavg`.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let t = Timing::from_seconds(4, vec![0.3, 0.1, 0.2]);
        assert_eq!(t.median_ms, 200.0);
        assert_eq!(t.min_ms, 100.0);
        assert_eq!(t.max_ms, 300.0);
        assert_eq!(t.images_per_second, 20.0);
        let t = Timing::from_seconds(1, vec![0.4, 0.1, 0.2, 0.3]);
        assert!((t.median_ms - 250.0).abs() < 1e-9);
    }

    #[test]
    fn parses_the_peak_resident_line() {
        let status = "Name:\tcucn\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(123_456));
        assert_eq!(parse_vm_hwm_kib("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(parse_vm_hwm_kib("VmHWM:\t 12 MB\n"), None);
    }

    #[test]
    fn rejects_settings_it_cannot_measure() {
        let device = Device::default();
        let bad = [
            BenchConfig {
                sizes: vec![],
                ..BenchConfig::default()
            },
            BenchConfig {
                steps: 0,
                ..BenchConfig::default()
            },
            BenchConfig {
                batch: 1,
                ..BenchConfig::default()
            },
        ];
        for config in bad {
            let err = run(&config, &device, &mut |_| {}).unwrap_err();
            assert!(matches!(err, BenchError::Settings(_)), "{err}");
        }
        let tiny = BenchConfig {
            sizes: vec![16],
            ..BenchConfig::default()
        };
        let err = run(&tiny, &device, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, BenchError::Model(ModelError::InputTooSmall(16))),
            "{err}"
        );
    }
}
