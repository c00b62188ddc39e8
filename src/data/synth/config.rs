//! Options of the synthetic benchmark and their validation.

use serde::{Deserialize, Serialize};

use super::SynthError;
use crate::classes::{NUM_BASIC, RAFDB_TRAIN_COUNTS};

/// Smallest image side the face model can draw legibly.
pub const MIN_SIZE: u32 = 32;
/// Largest image side accepted (keeps memory per image bounded).
pub const MAX_SIZE: u32 = 1024;

/// Everything that determines a synthetic benchmark: the same config gives byte-identical output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Number of training images.
    pub train: usize,
    /// Number of test images.
    pub test: usize,
    /// Image side in pixels (square images).
    pub size: u32,
    /// Fraction of training labels flipped to a different class, uniformly at random (0..=1).
    pub noise: f64,
    /// Fraction of faces blended between two expressions, labelled with the stronger (0..=1).
    pub ambiguity: f64,
    /// Test classes in equal numbers instead of `proportions`.
    pub balanced_test: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Range of the expression intensity multiplying a class's AU prototype.
    pub intensity: (f32, f32),
    /// Relative class frequencies in canonical order (7 non-negative weights).
    pub proportions: Vec<f64>,
}

impl Default for SynthConfig {
    /// 3,000 training and 1,000 test images of 112 px with RAF-DB's training proportions, 10 %
    /// ambiguous faces and clean labels.
    fn default() -> Self {
        SynthConfig {
            train: 3000,
            test: 1000,
            size: 112,
            noise: 0.0,
            ambiguity: 0.1,
            balanced_test: false,
            seed: 0,
            intensity: (0.55, 1.0),
            proportions: RAFDB_TRAIN_COUNTS.iter().map(|&n| n as f64).collect(),
        }
    }
}

impl SynthConfig {
    /// Checks every option, naming the first impossible one.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |msg: String| Err(SynthError::InvalidConfig(msg));
        if self.train == 0 && self.test == 0 {
            return bad("at least one training or test image is needed".into());
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return bad(format!(
                "image size {} px is outside {MIN_SIZE}..={MAX_SIZE}",
                self.size
            ));
        }
        for (name, value) in [("noise", self.noise), ("ambiguity", self.ambiguity)] {
            if !(0.0..=1.0).contains(&value) {
                return bad(format!("{name} fraction {value} is outside 0..=1"));
            }
        }
        let (lo, hi) = self.intensity;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return bad(format!(
                "intensity range {lo}..{hi} must satisfy 0 < min <= max <= 1"
            ));
        }
        if self.proportions.len() != NUM_BASIC {
            return bad(format!(
                "{} class proportions given, {NUM_BASIC} needed",
                self.proportions.len()
            ));
        }
        if let Some(p) = self
            .proportions
            .iter()
            .find(|p| !(p.is_finite() && **p >= 0.0))
        {
            return bad(format!("class proportion {p} must be a finite number >= 0"));
        }
        if self.proportions.iter().sum::<f64>() <= 0.0 {
            return bad("class proportions must not all be 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(cfg: SynthConfig) -> String {
        cfg.validate().unwrap_err().to_string()
    }

    #[test]
    fn default_is_valid() {
        SynthConfig::default().validate().unwrap();
    }

    #[test]
    fn impossible_options_are_named() {
        let d = SynthConfig::default;
        assert!(invalid(SynthConfig { size: 31, ..d() }).contains("size 31"));
        assert!(invalid(SynthConfig { noise: 1.5, ..d() }).contains("noise"));
        assert!(
            invalid(SynthConfig {
                noise: f64::NAN,
                ..d()
            })
            .contains("noise")
        );
        assert!(
            invalid(SynthConfig {
                ambiguity: -0.1,
                ..d()
            })
            .contains("ambiguity")
        );
        assert!(
            invalid(SynthConfig {
                intensity: (0.8, 0.5),
                ..d()
            })
            .contains("intensity")
        );
        assert!(
            invalid(SynthConfig {
                train: 0,
                test: 0,
                ..d()
            })
            .contains("at least one")
        );
        let five = SynthConfig {
            proportions: vec![1.0; 5],
            ..d()
        };
        assert!(invalid(five).contains("5 class proportions"));
        let negative = SynthConfig {
            proportions: vec![1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            ..d()
        };
        assert!(invalid(negative).contains("-1"));
        assert!(
            invalid(SynthConfig {
                proportions: vec![0.0; 7],
                ..d()
            })
            .contains("all be 0")
        );
    }
}
