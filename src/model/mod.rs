//! The CUCN network (METHOD.md): ResNet backbone with CBAM, RUL head, loss, optimizer, and
//! weight import/export.

pub mod backbone;
pub mod cbam;
pub mod conv;
pub mod cpu_batch_norm;
pub mod cpu_conv;
pub mod cpu_max_pool;
pub mod error;
pub mod fused_adam;
pub mod head;
pub mod loss;
pub mod network;
pub mod norm;
pub mod optim;
pub mod weights;

pub use error::ModelError;
pub use network::{Cucn, CucnConfig, Prediction, TrainOutput};
