//! cucn: facial expression recognition with CUCN (ResNet + CBAM, class-weighted cross-entropy and
//! RUL's uncertainty-weighted feature mixup). See `METHOD.md` in the shared folder for the method.
//!
//! # Example
//!
//! The expressions of the faces in a photo, with a trained model (here a tiny untrained one,
//! saved as `cucn train` saves its checkpoints, so the labels mean nothing):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use cucn::model::{CucnConfig, weights::save_model};
//! # let dir = tempfile::tempdir()?;
//! # let model_file = dir.path().join("model.bpk");
//! # let config = CucnConfig::new().with_widths([8, 16, 32, 64]).with_input_size(32);
//! # save_model(&config.init(&burn::tensor::Device::default())?, &config, &model_file)?;
//! use cucn::predict::Predictor;
//!
//! let predictor = Predictor::load(&model_file)?; // a model file or a run directory
//! let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/photos/astronaut.jpg");
//! let faces = predictor.predict(&image::open(photo)?.into_rgb8());
//! for face in &faces {
//!     let [x, y, w, h] = face.bbox;
//!     let p = face.probabilities[face.class_index].1;
//!     println!("{w}x{h} face at ({x}, {y}): {} (p {p:.2}, u {:.2})", face.label, face.uncertainty);
//! }
//! assert_eq!(faces.len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod ablate;
pub mod audit;
pub mod bench;
pub mod classes;
pub mod data;
pub mod demo;
pub mod device;
pub mod eval;
pub mod evaluate;
pub mod infer;
pub mod model;
pub mod predict;
pub mod train;
pub mod util;

use std::path::{Path, PathBuf};

/// The model file a user means by `path`: a cucn model file itself, or a run directory's best
/// checkpoint (else its last).
pub fn model_file(path: &Path) -> Result<PathBuf, model::ModelError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    train::checkpoint::best_or_last(path)
        .map(|d| d.join("model.bpk"))
        .ok_or_else(|| model::ModelError::NotAModel {
            path: path.to_path_buf(),
            reason: "neither a model file nor a run directory with checkpoints".into(),
        })
}
