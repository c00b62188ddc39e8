//! Class weights of the loss (METHOD.md, "the weight module"): minority classes get the larger
//! weight. Automatic modes are computed from the training split's counts and normalized to mean 1
//! over the classes present.

use std::fmt;
use std::str::FromStr;

/// Beta of the effective-number weights (Cui et al. 2019).
pub const EFFECTIVE_BETA: f64 = 0.9999;

/// How class weights are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeights {
    /// All ones (plain cross-entropy).
    None,
    /// `w_c ∝ 1 / n_c`.
    Inverse,
    /// `w_c ∝ 1 / sqrt(n_c)`.
    InverseSqrt,
    /// `w_c ∝ (1 - b) / (1 - b^n_c)`, b = 0.9999.
    Effective,
    /// Given by hand, one per class.
    Manual(Vec<f64>),
}

impl fmt::Display for ClassWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassWeights::None => f.write_str("none"),
            ClassWeights::Inverse => f.write_str("inverse"),
            ClassWeights::InverseSqrt => f.write_str("inverse-sqrt"),
            ClassWeights::Effective => f.write_str("effective"),
            ClassWeights::Manual(w) => {
                let parts: Vec<String> = w.iter().map(|x| x.to_string()).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl FromStr for ClassWeights {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" => Ok(ClassWeights::None),
            "inverse" => Ok(ClassWeights::Inverse),
            "inverse-sqrt" => Ok(ClassWeights::InverseSqrt),
            "effective" => Ok(ClassWeights::Effective),
            list => {
                let weights = list
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        format!(
                            "class weights '{s}': expected none, inverse, inverse-sqrt, effective \
                             or a comma-separated list of numbers"
                        )
                    })?;
                if weights.iter().any(|w| !w.is_finite() || *w < 0.0)
                    || weights.iter().all(|w| *w == 0.0)
                {
                    return Err(format!(
                        "class weights '{s}': weights must be finite, non-negative and not all zero"
                    ));
                }
                Ok(ClassWeights::Manual(weights))
            }
        }
    }
}

impl serde::Serialize for ClassWeights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ClassWeights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ClassWeights {
    /// The weight of each class given the training counts.
    ///
    /// # Errors
    /// A manual list whose length is not the number of classes.
    pub fn compute(&self, counts: &[usize]) -> Result<Vec<f64>, String> {
        let per_class = |f: &dyn Fn(f64) -> f64| -> Vec<f64> {
            counts
                .iter()
                .map(|&n| if n == 0 { 0.0 } else { f(n as f64) })
                .collect()
        };
        let raw = match self {
            ClassWeights::None => return Ok(vec![1.0; counts.len()]),
            ClassWeights::Manual(w) if w.len() != counts.len() => {
                return Err(format!(
                    "{} class weights given for {} classes",
                    w.len(),
                    counts.len()
                ));
            }
            ClassWeights::Manual(w) => return Ok(w.clone()),
            ClassWeights::Inverse => per_class(&|n| 1.0 / n),
            ClassWeights::InverseSqrt => per_class(&|n| 1.0 / n.sqrt()),
            ClassWeights::Effective => {
                per_class(&|n| (1.0 - EFFECTIVE_BETA) / (1.0 - EFFECTIVE_BETA.powf(n)))
            }
        };
        let present = counts.iter().filter(|&&n| n > 0).count().max(1);
        let mean = raw.iter().sum::<f64>() / present as f64;
        Ok(raw.into_iter().map(|w| w / mean).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_weights_are_normalized_and_favour_small_classes() {
        let w = ClassWeights::Inverse.compute(&[100, 25, 0]).unwrap();
        // raw 0.01, 0.04, (absent 0) -> mean over present 0.025 -> 0.4, 1.6, 0.
        assert!((w[0] - 0.4).abs() < 1e-12 && (w[1] - 1.6).abs() < 1e-12 && w[2] == 0.0);
    }

    #[test]
    fn inverse_sqrt_and_effective_order_like_inverse() {
        let counts = [4772, 281, 1290];
        for mode in [ClassWeights::InverseSqrt, ClassWeights::Effective] {
            let w = mode.compute(&counts).unwrap();
            assert!(w[1] > w[2] && w[2] > w[0], "{mode}: {w:?}");
            assert!((w.iter().sum::<f64>() / 3.0 - 1.0).abs() < 1e-12);
        }
        let w = ClassWeights::InverseSqrt.compute(&[100, 25]).unwrap();
        assert!((w[1] / w[0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn parsing_round_trips_and_rejects_nonsense() {
        for s in ["none", "inverse", "inverse-sqrt", "effective", "1,2.5,3"] {
            assert_eq!(s.parse::<ClassWeights>().unwrap().to_string(), s);
        }
        assert!("inverted".parse::<ClassWeights>().is_err());
        assert!("1,-2".parse::<ClassWeights>().is_err());
        assert!(
            ClassWeights::Manual(vec![1.0, 2.0])
                .compute(&[1, 2, 3])
                .is_err()
        );
    }
}
