//! The training loop (METHOD.md, "Training step"): seeded data order, augmentation, mixing
//! permutations and dropout, so that a run stopped anywhere and resumed gives the same numbers as
//! an uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, PartialEpoch, TrainState};
use super::config::{ConfigError, TrainConfig};
use super::history::{self, EpochMetrics};
use super::step::{StepDevice, StepResult, StepSeeds, forward_backward};
use crate::data::{self, Augment, BatchLoader, DataError, Dataset, LoaderConfig, Sample, Split};
use crate::eval::metrics::ConfusionMatrix;
use crate::infer;
use crate::model::ModelError;
use crate::model::weights::import_pytorch;
use crate::util::derive_seed;

/// Purposes of derived seeds (the last element of a seed path; the step's own are in `step`).
const SEED_INIT: u64 = 0;
const SEED_ORDER: u64 = 1;

/// How to run the training.
#[derive(Clone)]
pub struct TrainOptions {
    /// Run directory.
    pub out: PathBuf,
    /// Continue the run in `out` from its last checkpoint.
    pub resume: bool,
    /// No progress bar and no per-epoch lines.
    pub quiet: bool,
    /// Set (by Ctrl-C) to stop after the current batch with a checkpoint.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Where to compute: the model, the optimizer and the evaluation live here.
    pub device: Device,
    /// Further devices that each take a share of every training batch (data parallel, see
    /// `train::step`); empty for one device.
    pub replicas: Vec<Device>,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Run directory.
    pub run_dir: PathBuf,
    /// Metrics of the last epoch.
    pub last: EpochMetrics,
    /// Best held-out accuracy and its epoch.
    pub best: (f64, usize),
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Model, weights or checkpoint problem.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The loss went NaN or infinite.
    #[error(
        "the loss became {loss} at epoch {epoch}, batch {batch}: stopped; the last good checkpoint \
         is kept (try a lower learning rate)"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch.
        batch: usize,
        /// The value.
        loss: f64,
    },
    /// Ctrl-C: a checkpoint was saved.
    #[error(
        "interrupted at epoch {epoch}, batch {batch}: checkpoint saved; continue with --resume {dir}"
    )]
    Interrupted {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in it.
        batch: usize,
        /// Run directory.
        dir: PathBuf,
    },
    /// Resuming with other settings.
    #[error("cannot resume {dir}: the configuration differs:\n  {}", .diffs.join("\n  "))]
    ResumeMismatch {
        /// Run directory.
        dir: PathBuf,
        /// `key: old -> new` lines.
        diffs: Vec<String>,
    },
    /// Resuming on other data.
    #[error("cannot resume {dir}: the dataset differs (fingerprint {old} in the run, {new} now)")]
    DataChanged {
        /// Run directory.
        dir: PathBuf,
        /// Recorded fingerprint.
        old: String,
        /// Current fingerprint.
        new: String,
    },
    /// A run directory that would be overwritten, or a missing one on resume.
    #[error("{dir}: {message}")]
    RunDir {
        /// Run directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The held-out split: test, else validation.
fn held_out(dataset: &Dataset) -> Result<Arc<[Sample]>, TrainError> {
    for split in [Split::Test, Split::Val] {
        if !dataset.samples(split).is_empty() {
            return Ok(dataset.samples(split).to_vec().into());
        }
    }
    Err(TrainError::Data(DataError::Empty {
        path: dataset.root.clone(),
        split: "test",
    }))
}

/// Trains CUCN as `config` says, writing the run directory; see the module docs.
///
/// Initialization and dropout draw from the backend's random source, which Burn keeps once per
/// process (on `flex` and on CUDA alike, whatever the device): two runs trained at once in one
/// process take turns on it, so each is deterministic only when it trains alone. Separate
/// `cucn train` processes are unaffected.
pub fn train(config: TrainConfig, opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let device_count = 1 + opts.replicas.len();
    if config.train.batch < 2 * device_count {
        return Err(TrainError::Config(ConfigError::Invalid(format!(
            "batch {} is too small for {device_count} devices: each needs at least 2 samples",
            config.train.batch
        ))));
    }
    let dir = &opts.out;
    let last_dir = dir.join("checkpoints").join("last");
    let resumed = if opts.resume {
        let usable = checkpoint::usable(&last_dir).ok_or_else(|| TrainError::RunDir {
            dir: dir.clone(),
            message: "no checkpoint to resume from (checkpoints/last)".into(),
        })?;
        let state = checkpoint::read_state(&usable)?;
        let diffs = state.config.resume_conflicts(&config);
        if !diffs.is_empty() {
            return Err(TrainError::ResumeMismatch {
                dir: dir.clone(),
                diffs,
            });
        }
        Some(usable)
    } else {
        if dir.join("checkpoints").exists() {
            return Err(TrainError::RunDir {
                dir: dir.clone(),
                message: "already holds a run: use --resume to continue it, or another --out"
                    .into(),
            });
        }
        None
    };

    let format = config.data.format.expect("validated");
    let root = config.data.path.clone().expect("validated");
    let dataset = data::load(format, &root, &config.load_options())?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    if !dataset.skipped.is_empty() {
        let path = dir.join("skipped.csv");
        data::write_problems_csv(&path, &dataset.skipped).map_err(io_err(&path))?;
    }
    let fingerprint = dataset.fingerprint();
    let counts = dataset.class_counts(Split::Train);
    let class_weights = config
        .train
        .class_weights
        .compute(&counts)
        .map_err(ConfigError::Invalid)?;
    let names = dataset.class_names();
    let train_samples: Arc<[Sample]> = dataset.train.clone().into();
    let test_samples = held_out(&dataset)?;
    if train_samples.len() < config.train.batch {
        return Err(TrainError::Data(DataError::Empty {
            path: root.clone(),
            split: "train (fewer samples than one batch)",
        }));
    }

    let base = opts.device.clone();
    let ad = base.clone().autodiff();
    let network = config.network(dataset.num_classes);
    let seed = config.train.seed;
    let (mut model, mut state) = match &resumed {
        Some(ckpt_dir) => {
            let ckpt = checkpoint::load(ckpt_dir, &ad)?;
            if ckpt.state.data_fingerprint != fingerprint {
                return Err(TrainError::DataChanged {
                    dir: dir.clone(),
                    old: ckpt.state.data_fingerprint,
                    new: fingerprint,
                });
            }
            let mut state = ckpt.state;
            state.config = config.clone();
            (ckpt.model, state)
        }
        None => {
            base.seed(derive_seed(seed, &[SEED_INIT]));
            let mut model = network.init(&ad)?;
            if let Some(pretrained) = &config.model.pretrained {
                let (loaded, report) = import_pytorch(model, pretrained)?;
                model = loaded;
                if !opts.quiet {
                    eprintln!(
                        "pretrained {}: {} tensors loaded, {} new (head, CBAM), {} unused, classifier ignored",
                        pretrained.display(),
                        report.loaded,
                        report.missing.len(),
                        report.unused.len()
                    );
                }
            }
            let state = TrainState {
                epochs_done: 0,
                batches_done: 0,
                partial: PartialEpoch::default(),
                history: Vec::new(),
                best: None,
                data_fingerprint: fingerprint,
                class_weights: class_weights.clone(),
                config: config.clone(),
            };
            (model, state)
        }
    };
    let mut optim = config.optimizer().init(&model);
    if let Some(ckpt_dir) = &resumed {
        checkpoint::restore_optim(ckpt_dir, &mut optim, state.epochs_done)?;
    }
    write_run_files(dir, &config, names, &counts, &class_weights)?;

    let size = config.model.input_size;
    let batch = config.train.batch;
    let step_devices: Vec<StepDevice> = std::iter::once(&base)
        .chain(&opts.replicas)
        .map(|d| StepDevice::new(d, &class_weights))
        .collect();
    let batches_per_epoch = train_samples.len() / batch;
    for epoch in state.epochs_done..config.train.epochs {
        let e = epoch as u64;
        let mut order: Vec<usize> = (0..train_samples.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            seed,
            &[e, SEED_ORDER],
        )));
        let start = state.batches_done;
        let order = order[start * batch..batches_per_epoch * batch].to_vec();
        let loader = BatchLoader::new(
            train_samples.clone(),
            order,
            LoaderConfig {
                augment: Some(Augment { seed, epoch: e }),
                drop_last: true,
                ..LoaderConfig::new(batch, size as u32, config.train.workers)
            },
        );
        let (lr, fc_lr) = optim.learning_rates();
        let bar = progress_bar(
            opts.quiet,
            batches_per_epoch,
            start,
            epoch + 1,
            config.train.epochs,
        );
        let mut clock = Instant::now();
        for (i, b) in loader.enumerate() {
            let b = b?;
            let bi = start + i;
            let n = b.labels.len();
            let seeds = StepSeeds {
                seed,
                epoch: e,
                batch: bi as u64,
            };
            let StepResult {
                loss,
                correct,
                grads,
            } = forward_backward(
                &model,
                &step_devices,
                b.images,
                &b.labels,
                size,
                config.train.mix,
                &seeds,
            );
            if !loss.is_finite() {
                bar.abandon();
                return Err(TrainError::NonFinite {
                    epoch: epoch + 1,
                    batch: bi + 1,
                    loss,
                });
            }
            model = optim.step(model, grads);
            state.partial.loss_sum += loss * n as f64;
            state.partial.correct += correct;
            state.partial.seen += n;
            state.partial.seconds += clock.elapsed().as_secs_f64();
            clock = Instant::now();
            state.batches_done = bi + 1;
            bar.set_message(format!(
                "loss {:.4}",
                state.partial.loss_sum / state.partial.seen as f64
            ));
            bar.inc(1);
            if opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
            {
                bar.abandon();
                checkpoint::save(&last_dir, &model, &network, &optim, &state)?;
                return Err(TrainError::Interrupted {
                    epoch: epoch + 1,
                    batch: bi + 1,
                    dir: dir.clone(),
                });
            }
        }
        bar.finish_and_clear();
        optim.end_epoch();

        let valid = model.valid();
        let outputs = infer::run(
            &valid,
            test_samples.clone(),
            size,
            batch,
            config.train.workers,
            &base,
            &mut |_| {},
        )?;
        let confusion = ConfusionMatrix::from_labels(
            &outputs.labels,
            &outputs.predictions(),
            dataset.num_classes,
        )
        .expect("labels and predictions are in range");
        let p = &state.partial;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: p.loss_sum / p.seen.max(1) as f64,
            train_accuracy: p.correct as f64 / p.seen.max(1) as f64,
            test_accuracy: confusion.accuracy(),
            test_mean_class_accuracy: confusion.mean_class_accuracy(),
            test_per_class_accuracy: confusion.class_accuracies(),
            lr,
            fc_lr,
            train_images_per_second: p.seen as f64 / p.seconds.max(1e-9),
            train_seconds: p.seconds,
        };
        let improved = state
            .best
            .is_none_or(|(best, _)| metrics.test_accuracy > best);
        if improved {
            state.best = Some((metrics.test_accuracy, epoch + 1));
        }
        state.history.push(metrics.clone());
        state.epochs_done = epoch + 1;
        state.batches_done = 0;
        state.partial = PartialEpoch::default();
        checkpoint::save(&last_dir, &model, &network, &optim, &state)?;
        if improved {
            checkpoint::save(
                &dir.join("checkpoints").join("best"),
                &model,
                &network,
                &optim,
                &state,
            )?;
        }
        history::write(dir, &state.history, names).map_err(io_err(dir))?;
        if !opts.quiet {
            eprintln!(
                "epoch {}/{}: loss {:.4}, train acc {:.2}%, test acc {:.2}%, mean class acc {:.2}%, {:.1} img/s{}",
                epoch + 1,
                config.train.epochs,
                metrics.train_loss,
                100.0 * metrics.train_accuracy,
                100.0 * metrics.test_accuracy,
                100.0 * metrics.test_mean_class_accuracy,
                metrics.train_images_per_second,
                if improved { " (best)" } else { "" }
            );
        }
    }
    let last = state
        .history
        .last()
        .cloned()
        .ok_or_else(|| TrainError::RunDir {
            dir: dir.clone(),
            message: "no epoch was trained".into(),
        })?;
    Ok(TrainSummary {
        run_dir: dir.clone(),
        last,
        best: state.best.expect("at least one epoch"),
    })
}

/// `config.toml` and `class_weights.json`.
fn write_run_files(
    dir: &Path,
    config: &TrainConfig,
    names: &[&str],
    counts: &[usize],
    weights: &[f64],
) -> Result<(), TrainError> {
    let path = dir.join("config.toml");
    crate::util::write_atomic(&path, config.to_toml().as_bytes()).map_err(io_err(&path))?;
    // An array keeps the canonical class order.
    let classes: Vec<serde_json::Value> = names
        .iter()
        .zip(counts.iter().zip(weights))
        .map(|(n, (c, w))| serde_json::json!({"class": n, "train_count": c, "weight": w}))
        .collect();
    let json = serde_json::json!({
        "mode": config.train.class_weights.to_string(),
        "weights": weights,
        "classes": classes,
    });
    let path = dir.join("class_weights.json");
    crate::util::write_atomic(
        &path,
        serde_json::to_string_pretty(&json)
            .expect("json")
            .as_bytes(),
    )
    .map_err(io_err(&path))
}

/// A progress bar with rate and ETA on a terminal; hidden otherwise.
fn progress_bar(
    quiet: bool,
    total: usize,
    done: usize,
    epoch: usize,
    epochs: usize,
) -> ProgressBar {
    let visible = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64).with_position(done as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} batches, {{per_sec}}, ETA {{eta}} {{msg}}"
        ))
        .expect("valid template"),
    );
    bar
}
