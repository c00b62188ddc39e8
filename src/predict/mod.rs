//! Expressions of the faces in photos: detect faces (or take the inputs as face crops), crop them
//! with a margin, preprocess exactly as in training and classify them in batches with a trained
//! CUCN model, reporting every class's probability and the learned uncertainty `u` per face.
//!
//! [`Predictor::predict`] handles one decoded image; [`Predictor::predict_files`] streams many
//! files, decoding, detecting and preprocessing on all cores while the network classifies the
//! previous group.

pub mod annotate;
pub mod detect;
pub mod inputs;
pub mod output;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;

use crate::classes::CLASS_NAMES;
use crate::data::decode::{DEFAULT_MAX_PIXELS, decode, read_file};
use crate::data::tensor::Preprocessor;
use crate::infer::{argmax, batch_tensor};
use crate::model::weights::load_model;
use crate::model::{Cucn, CucnConfig, ModelError};

pub use detect::{DetectOptions, Detection};

/// What can go wrong in prediction as a whole (a bad input file is a [`FileResult`], not this).
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The model cannot be loaded (missing, not a cucn model, damaged).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An annotated copy could not be made.
    #[error("{}: cannot write the annotated copy: {message}", path.display())]
    Annotate {
        /// The annotated file that was to be written.
        path: PathBuf,
        /// Why it failed.
        message: String,
    },
}

/// How inputs are turned into face crops and batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PredictOptions {
    /// Face detection settings; `None` when every input is already a face crop.
    pub detect: Option<DetectOptions>,
    /// Context added around each detected face box before resizing, as a fraction of the box's
    /// width (left and right) and height (top and bottom); aligned training faces such as
    /// RAF-DB's show some forehead and chin beyond what the detector boxes.
    pub margin: f32,
    /// Faces per network batch (and files decoded ahead per group).
    pub batch: usize,
    /// Images over this many pixels are refused as possible decompression bombs.
    pub max_pixels: u64,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            detect: Some(DetectOptions::default()),
            margin: 0.2,
            batch: 32,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// The prediction for one face.
#[derive(Clone, Debug, PartialEq)]
pub struct FacePrediction {
    /// The face box `[x, y, width, height]` in pixels of the input (the whole image with
    /// detection off).
    pub bbox: [u32; 4],
    /// The most probable class's name.
    pub label: String,
    /// The most probable class's index (canonical order).
    pub class_index: usize,
    /// Every class's name and probability, in class order; the probabilities sum to 1.
    pub probabilities: Vec<(String, f32)>,
    /// The learned uncertainty `u` (> 0; larger means more ambiguous).
    pub uncertainty: f32,
}

impl FacePrediction {
    /// The `k` most probable classes, most probable first.
    pub fn top_k(&self, k: usize) -> Vec<(&str, f32)> {
        let mut ranked: Vec<(&str, f32)> = self
            .probabilities
            .iter()
            .map(|(name, p)| (name.as_str(), *p))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        ranked
    }
}

/// The outcome for one input file: its faces (possibly none), or why it could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct FileResult {
    /// The file.
    pub path: PathBuf,
    /// Its faces, or the problem with the file.
    pub faces: Result<Vec<FacePrediction>, String>,
}

/// A face ready for the network: its box and its normalized `3 x S x S` tensor.
struct FaceInput {
    bbox: [u32; 4],
    tensor: Vec<f32>,
}

/// The CPU side of prediction (decode, detect, crop, preprocess): small and shareable between
/// threads, unlike the network.
#[derive(Clone, Copy)]
struct Preparer {
    options: PredictOptions,
    size: u32,
}

impl Preparer {
    fn prepare(&self, image: &RgbImage, pre: &mut Preprocessor) -> Vec<FaceInput> {
        let Some(detect) = &self.options.detect else {
            return vec![FaceInput {
                bbox: [0, 0, image.width(), image.height()],
                tensor: pre.tensor(image),
            }];
        };
        detect::detect_faces(image, detect)
            .into_iter()
            .map(|face| FaceInput {
                bbox: face.bbox,
                tensor: pre.tensor(&crop_with_margin(image, face.bbox, self.options.margin)),
            })
            .collect()
    }

    fn prepare_file(&self, path: &Path, pre: &mut Preprocessor) -> Result<Vec<FaceInput>, String> {
        let image = decode(&read_file(path)?, self.options.max_pixels)?;
        Ok(self.prepare(&image, pre))
    }
}

/// The face box widened by `margin` of its size on every side, clamped to the image, as a new
/// image.
fn crop_with_margin(image: &RgbImage, bbox: [u32; 4], margin: f32) -> RgbImage {
    let [x, y, w, h] = bbox.map(f64::from);
    let (mx, my) = (w * f64::from(margin), h * f64::from(margin));
    let [left, top, width, height] = detect::clamp_box(
        x - mx,
        y - my,
        w + 2.0 * mx,
        h + 2.0 * my,
        image.width(),
        image.height(),
    )
    .unwrap_or(bbox);
    image::imageops::crop_imm(image, left, top, width, height).to_image()
}

/// A trained CUCN model ready to classify the expressions of faces.
pub struct Predictor {
    model: Cucn,
    config: CucnConfig,
    class_names: Vec<String>,
    device: Device,
    options: PredictOptions,
}

impl Predictor {
    /// Loads a cucn model file, or a run directory's best checkpoint, on the default device with
    /// default options (face detection on).
    pub fn load(path: &Path) -> Result<Self, PredictError> {
        Self::load_on(path, &Device::default())
    }

    /// Loads a model as [`Predictor::load`] does, onto `device` (a plain, non-autodiff device:
    /// the network then runs in eval mode).
    pub fn load_on(path: &Path, device: &Device) -> Result<Self, PredictError> {
        if !path.exists() {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "model not found"),
            }
            .into());
        }
        let (model, config) = load_model(&crate::model_file(path)?, device)?;
        let class_names = (0..config.num_classes)
            .map(|i| {
                CLASS_NAMES
                    .get(i)
                    .map_or_else(|| format!("class_{i}"), |n| n.to_string())
            })
            .collect();
        Ok(Predictor {
            model,
            config,
            class_names,
            device: device.clone(),
            options: PredictOptions::default(),
        })
    }

    /// The same predictor with other options.
    pub fn with_options(mut self, options: PredictOptions) -> Self {
        self.options = options;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &PredictOptions {
        &self.options
    }

    /// The network's architecture (input size, classes...).
    pub fn config(&self) -> &CucnConfig {
        &self.config
    }

    /// The class names in index order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn preparer(&self) -> Preparer {
        Preparer {
            options: self.options,
            size: self.config.input_size as u32,
        }
    }

    /// The faces of one image and their expressions, left to right. With detection off the whole
    /// image is one face; with it on, an image without a detectable face gives an empty list.
    pub fn predict(&self, image: &RgbImage) -> Vec<FacePrediction> {
        let preparer = self.preparer();
        let mut pre = Preprocessor::new(preparer.size);
        self.classify(preparer.prepare(image, &mut pre))
    }

    /// Predicts every file in `files`, calling `on_result` once per file in the given order.
    /// Groups of `batch` files are decoded, searched for faces and preprocessed on all cores
    /// (rayon's pool) while the network classifies the previous group; an unreadable file gives
    /// a result with its problem and the rest go on.
    pub fn predict_files(&self, files: &[PathBuf], mut on_result: impl FnMut(FileResult)) {
        let preparer = self.preparer();
        let group_size = self.options.batch.max(1);
        type Prepared = Vec<Result<Vec<FaceInput>, String>>;
        std::thread::scope(|scope| {
            // One group in the channel and one being built: the CPU work stays a group ahead.
            let (sender, receiver) = sync_channel::<Prepared>(1);
            scope.spawn(move || {
                for group in files.chunks(group_size) {
                    let prepared: Prepared = group
                        .par_iter()
                        .map_init(
                            || Preprocessor::new(preparer.size),
                            |pre, path| preparer.prepare_file(path, pre),
                        )
                        .collect();
                    if sender.send(prepared).is_err() {
                        break; // the consumer stopped
                    }
                }
            });
            for (group, prepared) in files.chunks(group_size).zip(receiver) {
                let mut faces = Vec::new();
                let counts: Vec<Result<usize, String>> = prepared
                    .into_iter()
                    .map(|file| {
                        file.map(|f| {
                            let n = f.len();
                            faces.extend(f);
                            n
                        })
                    })
                    .collect();
                let mut predictions = self.classify(faces).into_iter();
                for (path, count) in group.iter().zip(counts) {
                    on_result(FileResult {
                        path: path.clone(),
                        faces: count.map(|n| predictions.by_ref().take(n).collect()),
                    });
                }
            }
        });
    }

    /// Classifies prepared faces in batches, keeping their order.
    fn classify(&self, faces: Vec<FaceInput>) -> Vec<FacePrediction> {
        let size = self.config.input_size;
        let k = self.class_names.len();
        let mut out = Vec::with_capacity(faces.len());
        for group in faces.chunks(self.options.batch.max(1)) {
            let n = group.len();
            let mut images = Vec::with_capacity(n * 3 * size * size);
            for face in group {
                images.extend_from_slice(&face.tensor);
            }
            let prediction = self
                .model
                .predict(batch_tensor(images, n, size, &self.device));
            let probabilities = floats(prediction.probabilities);
            let uncertainty = floats(prediction.uncertainty);
            for ((face, p), &u) in group.iter().zip(probabilities.chunks(k)).zip(&uncertainty) {
                let class_index = argmax(p);
                out.push(FacePrediction {
                    bbox: face.bbox,
                    label: self.class_names[class_index].clone(),
                    class_index,
                    probabilities: self
                        .class_names
                        .iter()
                        .cloned()
                        .zip(p.iter().copied())
                        .collect(),
                    uncertainty: u,
                });
            }
        }
        out
    }
}

/// A tensor's values as `f32`.
fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensors convert to f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_widens_the_crop_within_the_image() {
        let image = RgbImage::from_fn(100, 80, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let crop = crop_with_margin(&image, [40, 30, 20, 20], 0.25);
        assert_eq!(crop.dimensions(), (30, 30));
        assert_eq!(crop.get_pixel(0, 0), image.get_pixel(35, 25));
        let edge = crop_with_margin(&image, [0, 0, 20, 20], 0.5);
        assert_eq!(edge.dimensions(), (30, 30));
        assert_eq!(edge.get_pixel(0, 0), image.get_pixel(0, 0));
    }

    #[test]
    fn top_k_ranks_by_probability() {
        let face = FacePrediction {
            bbox: [0, 0, 1, 1],
            label: "b".into(),
            class_index: 1,
            probabilities: vec![("a".into(), 0.2), ("b".into(), 0.5), ("c".into(), 0.3)],
            uncertainty: 1.0,
        };
        assert_eq!(face.top_k(2), vec![("b", 0.5), ("c", 0.3)]);
        assert_eq!(face.top_k(9).len(), 3);
    }
}
