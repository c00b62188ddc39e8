//! Training augmentation (METHOD.md, "Input pipeline"), as RUL's code does it: with probability 0.5
//! one of {horizontal flip, additive Gaussian noise of variance 30} chosen uniformly, applied to the
//! 8-bit source image; after resizing and normalization, torchvision's `RandomErasing(p=0.5,
//! scale=(0.02, 0.25), ratio=(0.3, 3.3), value=0)` on the tensor.
//!
//! Every sample draws from its own generator seeded by (seed, epoch, sample index), so the result
//! does not depend on which worker handles the sample or when.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Variance of the additive Gaussian noise on the 0..255 scale (RUL's `add_g`).
const NOISE_VARIANCE: f32 = 30.0;
/// Probability of applying one of flip/noise.
const BASIC_AUG_P: f64 = 0.5;
/// Random erasing: probability, area fraction range, log-uniform aspect-ratio range.
const ERASE_P: f64 = 0.5;
const ERASE_SCALE: (f64, f64) = (0.02, 0.25);
const ERASE_RATIO: (f64, f64) = (0.3, 3.3);
/// torchvision's number of attempts to find an erasing box that fits.
const ERASE_ATTEMPTS: usize = 10;

/// Augmentation settings for one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augment {
    /// The run's seed.
    pub seed: u64,
    /// The epoch, so that every epoch sees different augmentations.
    pub epoch: u64,
}

impl Augment {
    /// The generator of one sample (by its index in the dataset) in this epoch.
    pub fn rng_for(&self, sample_index: usize) -> ChaCha8Rng {
        let mixed = crate::util::derive_seed(self.seed, &[self.epoch, sample_index as u64]);
        ChaCha8Rng::seed_from_u64(mixed)
    }
}

/// With probability 0.5, flips the image horizontally or adds Gaussian noise (one of the two,
/// uniformly).
pub fn flip_or_noise(image: &mut RgbImage, rng: &mut impl Rng) {
    if rng.random_bool(BASIC_AUG_P) {
        if rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(image);
        } else {
            add_noise(image, rng);
        }
    }
}

/// Adds N(0, 30) noise to every channel value, clips to 0..255 and truncates as numpy's
/// `astype(np.uint8)` does in RUL's `add_g`.
fn add_noise(image: &mut RgbImage, rng: &mut impl Rng) {
    let std = NOISE_VARIANCE.sqrt();
    for v in image.iter_mut() {
        let n: f32 = rng.sample(StandardNormal);
        *v = (f32::from(*v) + std * n).clamp(0.0, 255.0) as u8;
    }
}

/// torchvision `RandomErasing` with value 0 on one normalized CHW image of `size` x `size`.
pub fn random_erase(chw: &mut [f32], size: usize, rng: &mut impl Rng) {
    if !rng.random_bool(ERASE_P) {
        return;
    }
    let area = (size * size) as f64;
    let (log_lo, log_hi) = (ERASE_RATIO.0.ln(), ERASE_RATIO.1.ln());
    for _ in 0..ERASE_ATTEMPTS {
        let erase_area = area * rng.random_range(ERASE_SCALE.0..ERASE_SCALE.1);
        let aspect = rng.random_range(log_lo..log_hi).exp();
        // Python's round() rounds half to even.
        let h = (erase_area * aspect).sqrt().round_ties_even() as usize;
        let w = (erase_area / aspect).sqrt().round_ties_even() as usize;
        if !(h < size && w < size) {
            continue;
        }
        let top = rng.random_range(0..=size - h);
        let left = rng.random_range(0..=size - w);
        for plane in chw.chunks_exact_mut(size * size) {
            for row in plane.chunks_exact_mut(size).skip(top).take(h) {
                row[left..left + w].fill(0.0);
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_generators_depend_on_seed_epoch_and_index_only() {
        let a = Augment { seed: 7, epoch: 2 };
        let draw = |aug: Augment, i| aug.rng_for(i).random::<u64>();
        assert_eq!(draw(a, 5), draw(a, 5));
        assert_ne!(draw(a, 5), draw(a, 6));
        assert_ne!(draw(a, 5), draw(Augment { seed: 7, epoch: 3 }, 5));
        assert_ne!(draw(a, 5), draw(Augment { seed: 8, epoch: 2 }, 5));
    }

    #[test]
    fn noise_has_the_configured_variance() {
        let mut img = RgbImage::from_pixel(100, 100, image::Rgb([128, 128, 128]));
        add_noise(&mut img, &mut ChaCha8Rng::seed_from_u64(1));
        let vals: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        // Truncation shifts the mean down by about 0.5 and adds about 1/12 to the variance.
        assert!((mean - 127.5).abs() < 0.2, "mean {mean}");
        assert!((var - 30.08).abs() < 1.5, "variance {var}");
    }

    #[test]
    fn erasing_zeroes_one_box_in_every_channel_with_the_right_area() {
        let size = 50;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut erased = 0;
        for _ in 0..200 {
            let mut chw = vec![1.0f32; 3 * size * size];
            random_erase(&mut chw, size, &mut rng);
            let zeros: Vec<usize> = chw
                .chunks_exact(size * size)
                .map(|p| p.iter().filter(|&&v| v == 0.0).count())
                .collect();
            assert!(zeros.iter().all(|&z| z == zeros[0]));
            if zeros[0] > 0 {
                erased += 1;
                let frac = zeros[0] as f64 / (size * size) as f64;
                // Rounding of the box sides widens the nominal 0.02..0.25 range a little.
                assert!((0.01..0.3).contains(&frac), "area fraction {frac}");
            }
        }
        assert!((70..130).contains(&erased), "erased {erased} of 200");
    }
}
