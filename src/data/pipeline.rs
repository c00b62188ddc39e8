//! The batch loader: worker threads decode, augment and normalize images into batches, each
//! worker a bounded number of batches ahead, and the consumer receives them in order.
//!
//! Worker `w` of `N` builds batches `w, w + N, w + 2N, ...` and sends them down its own bounded
//! channel; the consumer takes batch `i` from channel `i % N`. Batches thus come out in order,
//! at most `N * (prefetch + 1)` batches exist at once, images are read from disk as needed, and
//! because every sample's augmentation draws from its own (seed, epoch, index) generator the
//! output is the same for any worker count.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::augment::{self, Augment};
use super::decode::{self, DEFAULT_MAX_PIXELS};
use super::error::DataError;
use super::sample::{ImageSource, Sample};
use super::tensor::Preprocessor;

/// One batch of network input.
#[derive(Debug)]
pub struct Batch {
    /// `B x 3 x S x S` normalized values, NCHW.
    pub images: Vec<f32>,
    /// Class index of each image.
    pub labels: Vec<usize>,
    /// Index of each image in the sample slice the loader was built from.
    pub indices: Vec<usize>,
}

/// How batches are built.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Side length S of the square network input.
    pub image_size: u32,
    /// Training augmentation for this epoch; `None` for evaluation.
    pub augment: Option<Augment>,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Finished batches each worker may hold ahead of the consumer.
    pub prefetch: usize,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Images over this many pixels are refused.
    pub max_pixels: u64,
}

impl LoaderConfig {
    /// Evaluation settings (no augmentation, keep the last batch) with 1 batch of prefetch per
    /// worker: enough to hide loading behind a training step, and memory stays at about
    /// `2 x workers` batches.
    pub fn new(batch_size: usize, image_size: u32, workers: usize) -> Self {
        LoaderConfig {
            batch_size,
            image_size,
            augment: None,
            workers,
            prefetch: 1,
            drop_last: false,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// An iterator over the batches of one pass through `order`.
pub struct BatchLoader {
    receivers: Vec<Receiver<Result<Batch, DataError>>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    num_batches: usize,
}

impl BatchLoader {
    /// Starts the workers for one pass over `samples` in the order given by `order` (indices into
    /// `samples`, e.g. a shuffled permutation).
    ///
    /// # Panics
    /// If `batch_size` or `image_size` is 0, or an index in `order` is out of range.
    pub fn new(samples: Arc<[Sample]>, order: Vec<usize>, config: LoaderConfig) -> Self {
        assert!(config.batch_size > 0 && config.image_size > 0);
        assert!(
            order.iter().all(|&i| i < samples.len()),
            "sample index out of range"
        );
        let full = order.len() / config.batch_size;
        let num_batches = if config.drop_last || order.len().is_multiple_of(config.batch_size) {
            full
        } else {
            full + 1
        };
        let order: Arc<[usize]> = order.into();
        let n_workers = config.workers.clamp(1, num_batches.max(1));
        let mut receivers = Vec::with_capacity(n_workers);
        let mut workers = Vec::with_capacity(n_workers);
        for w in 0..n_workers {
            let (tx, rx) = sync_channel(config.prefetch);
            receivers.push(rx);
            let job = WorkerJob {
                samples: Arc::clone(&samples),
                order: Arc::clone(&order),
                config: config.clone(),
                first: w,
                step: n_workers,
                num_batches,
            };
            workers.push(std::thread::spawn(move || job.run(tx)));
        }
        BatchLoader {
            receivers,
            workers,
            next: 0,
            num_batches,
        }
    }

    /// Number of batches this pass yields.
    pub fn num_batches(&self) -> usize {
        self.num_batches
    }
}

impl Iterator for BatchLoader {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.num_batches {
            return None;
        }
        let rx = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        Some(rx.recv().unwrap_or_else(|_| {
            Err(DataError::Image {
                location: "input pipeline".into(),
                problem: "a loader thread stopped unexpectedly".into(),
            })
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_batches - self.next;
        (left, Some(left))
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        // Closing the channels makes blocked workers' sends fail, so they stop.
        self.receivers.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// What one worker thread does: every `step`-th batch starting at `first`.
struct WorkerJob {
    samples: Arc<[Sample]>,
    order: Arc<[usize]>,
    config: LoaderConfig,
    first: usize,
    step: usize,
    num_batches: usize,
}

impl WorkerJob {
    fn run(self, tx: SyncSender<Result<Batch, DataError>>) {
        let mut pre = Preprocessor::new(self.config.image_size);
        for b in (self.first..self.num_batches).step_by(self.step) {
            let start = b * self.config.batch_size;
            let end = (start + self.config.batch_size).min(self.order.len());
            let batch = self.build(&self.order[start..end], &mut pre);
            if tx.send(batch).is_err() {
                return; // the consumer is gone
            }
        }
    }

    fn build(&self, indices: &[usize], pre: &mut Preprocessor) -> Result<Batch, DataError> {
        let len = pre.tensor_len();
        let mut images = vec![0.0f32; indices.len() * len];
        for (&i, out) in indices.iter().zip(images.chunks_exact_mut(len)) {
            let sample = &self.samples[i];
            render(
                sample,
                i,
                pre,
                self.config.augment,
                self.config.max_pixels,
                out,
            )?;
        }
        Ok(Batch {
            images,
            labels: indices.iter().map(|&i| self.samples[i].label).collect(),
            indices: indices.to_vec(),
        })
    }
}

/// Decodes, augments (if asked) and normalizes one sample into `out`.
fn render(
    sample: &Sample,
    index: usize,
    pre: &mut Preprocessor,
    augment: Option<Augment>,
    max_pixels: u64,
    out: &mut [f32],
) -> Result<(), DataError> {
    let mut image =
        decode::source_rgb(&sample.source, max_pixels).map_err(|problem| DataError::Image {
            location: sample.location(),
            problem,
        })?;
    match augment {
        Some(aug) => {
            let mut rng = aug.rng_for(index);
            augment::flip_or_noise(&mut image, &mut rng);
            pre.write_tensor(&image, out);
            augment::random_erase(out, pre.size() as usize, &mut rng);
        }
        None => pre.write_tensor(&image, out),
    }
    Ok(())
}

/// Evaluation preprocessing of one image (decode, crop, resize, normalize): the CHW tensor of
/// `3 x size x size` values that `predict` and evaluation feed the network.
pub fn load_image_tensor(source: &ImageSource, size: u32) -> Result<Vec<f32>, DataError> {
    let image = decode::source_rgb(source, DEFAULT_MAX_PIXELS).map_err(|problem| {
        let location = match source {
            ImageSource::File { path, .. } => path.display().to_string(),
            ImageSource::Grey { .. } => "in-memory image".into(),
        };
        DataError::Image { location, problem }
    })?;
    Ok(Preprocessor::new(size).tensor(&image))
}
