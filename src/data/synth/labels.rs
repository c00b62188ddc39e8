//! Which class each image shows and which label it is given: exact class counts, their shuffled
//! order, and the flipped training labels. This is the only part of the benchmark that needs the
//! whole split at once; everything else is drawn per image.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Split, SynthConfig, derive_seed};
use crate::classes::NUM_BASIC;

/// The clean class of an image, the label written for it, and whether that label was flipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelPlan {
    /// The expression actually drawn (canonical index).
    pub clean: usize,
    /// The label written to the label file.
    pub given: usize,
    /// `given != clean` because of label noise.
    pub flipped: bool,
}

/// Splits `n` images over the classes in proportion to `weights` (largest remainder, ties to the
/// lower class index), so the counts sum to exactly `n`.
pub fn class_counts(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let quotas: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let missing = n - counts.iter().sum::<usize>();
    for &c in order.iter().take(missing) {
        counts[c] += 1;
    }
    counts
}

/// The labels of every image of `split`, in index order.
pub fn plan_split(cfg: &SynthConfig, split: Split) -> Vec<LabelPlan> {
    let (n, weights) = match split {
        Split::Train => (cfg.train, cfg.proportions.clone()),
        Split::Test if cfg.balanced_test => (cfg.test, vec![1.0; NUM_BASIC]),
        Split::Test => (cfg.test, cfg.proportions.clone()),
    };
    // A per-split stream apart from the per-image ones (index u64::MAX is never an image).
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, split, u64::MAX));
    let mut classes: Vec<usize> = class_counts(n, &weights)
        .iter()
        .enumerate()
        .flat_map(|(c, &k)| std::iter::repeat_n(c, k))
        .collect();
    classes.shuffle(&mut rng);
    let mut plan: Vec<LabelPlan> = classes
        .into_iter()
        .map(|c| LabelPlan {
            clean: c,
            given: c,
            flipped: false,
        })
        .collect();
    if split == Split::Train {
        let flips = (cfg.noise * n as f64).round() as usize;
        for i in rand::seq::index::sample(&mut rng, n, flips.min(n)) {
            let entry = &mut plan[i];
            // Uniform over the other classes: draw from K-1 and skip the clean one.
            let other = rng.random_range(0..NUM_BASIC - 1);
            entry.given = if other >= entry.clean {
                other + 1
            } else {
                other
            };
            entry.flipped = true;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::RAFDB_TRAIN_COUNTS;

    #[test]
    fn counts_follow_weights_and_sum_exactly() {
        let raf: Vec<f64> = RAFDB_TRAIN_COUNTS.iter().map(|&n| n as f64).collect();
        assert_eq!(class_counts(12271, &raf), RAFDB_TRAIN_COUNTS.to_vec());
        let c = class_counts(1000, &raf);
        assert_eq!(c.iter().sum::<usize>(), 1000);
        assert_eq!(c[3], 389); // 4772 / 12271 of 1000 = 388.9
        assert_eq!(class_counts(10, &[1.0; 7]), vec![2, 2, 2, 1, 1, 1, 1]);
        assert_eq!(
            class_counts(5, &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            vec![0, 5, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn noise_flips_exactly_the_fraction_of_training_labels_only() {
        let cfg = SynthConfig {
            train: 1000,
            test: 300,
            noise: 0.2,
            ..Default::default()
        };
        let train = plan_split(&cfg, Split::Train);
        let flipped: Vec<_> = train.iter().filter(|p| p.flipped).collect();
        assert_eq!(flipped.len(), 200);
        assert!(
            flipped
                .iter()
                .all(|p| p.given != p.clean && p.given < NUM_BASIC)
        );
        assert!(
            train
                .iter()
                .filter(|p| !p.flipped)
                .all(|p| p.given == p.clean)
        );
        assert!(plan_split(&cfg, Split::Test).iter().all(|p| !p.flipped));
    }

    #[test]
    fn balanced_test_has_equal_classes_and_order_is_shuffled() {
        let cfg = SynthConfig {
            test: 700,
            balanced_test: true,
            ..Default::default()
        };
        let test = plan_split(&cfg, Split::Test);
        for c in 0..NUM_BASIC {
            assert_eq!(test.iter().filter(|p| p.clean == c).count(), 100);
        }
        assert_ne!(test[..100].iter().filter(|p| p.clean == 0).count(), 100);
        assert_eq!(test, plan_split(&cfg, Split::Test));
    }
}
