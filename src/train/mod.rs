//! Training: configuration, class weights, checkpoints, metrics history and the loop.

pub mod checkpoint;
pub mod class_weights;
pub mod config;
pub mod history;
pub mod step;
pub mod trainer;

pub use class_weights::ClassWeights;
pub use config::{ConfigError, Preset, TrainConfig};
pub use trainer::{TrainError, TrainOptions, TrainSummary, train};
