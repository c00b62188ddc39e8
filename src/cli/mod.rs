//! Argument structs and thin runners of the subcommands; the work is in the library.

pub mod ablate;
pub mod audit;
pub mod bench;
pub mod compare;
pub mod data;
pub mod demo;
pub mod eval;
pub mod export;
pub mod predict;
pub mod synth;
pub mod train;
