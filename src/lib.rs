//! cucn: facial expression recognition with CUCN (ResNet + CBAM, class-weighted cross-entropy and
//! RUL's uncertainty-weighted feature mixup). See `METHOD.md` in the shared folder for the method.

pub mod classes;
pub mod eval;
pub mod util;
pub mod model;
