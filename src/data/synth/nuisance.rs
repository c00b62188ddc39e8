//! Everything that varies besides the person and the expression: pose, background clutter,
//! lighting, occlusion, blur, sensor noise and JPEG quality. Kept moderate so that expressions stay
//! readable at 64 px.

use image::RgbImage;
use rand::Rng;
use tiny_skia::{Pixmap, Transform};

use super::canvas::{ellipse, fill, line, rect, stroke};
use super::identity::{Rgb, random_color};

/// Blur and sizes below are tuned at this image side and scaled to others.
const REFERENCE_SIZE: f32 = 112.0;

/// Head pose in the image plane, plus a yaw-like squash.
#[derive(Clone, Copy, Debug)]
pub struct Pose {
    /// In-plane rotation in degrees.
    pub roll: f32,
    /// Face size relative to the nominal one.
    pub scale: f32,
    /// Offset of the face centre, in fractions of the image side.
    pub shift: (f32, f32),
    /// Head turn in -1..1: squashes the face horizontally and slides the features sideways.
    pub yaw: f32,
}

impl Pose {
    fn sample(rng: &mut impl Rng) -> Pose {
        Pose {
            roll: rng.random_range(-10.0..10.0),
            scale: rng.random_range(1.12..1.32),
            shift: (
                rng.random_range(-0.04..0.04),
                rng.random_range(-0.035..0.035),
            ),
            yaw: rng.random_range(-0.8..0.8),
        }
    }

    /// Maps face coordinates (fractions of the image side, origin at the face centre) to pixels.
    pub fn face_transform(&self, size: u32) -> Transform {
        let s = size as f32;
        Transform::from_translate((0.5 + self.shift.0) * s, (0.5 + self.shift.1) * s)
            .pre_rotate(self.roll)
            .pre_scale(
                s * self.scale * (1.0 - 0.12 * self.yaw.abs()),
                s * self.scale,
            )
    }

    /// Like `face_transform`, with the inner features slid towards the side the head turns to.
    pub fn feature_transform(&self, size: u32) -> Transform {
        self.face_transform(size)
            .pre_translate(0.03 * self.yaw, 0.0)
    }
}

/// Something in front of the face (a hand, a cup, a microphone).
#[derive(Clone, Copy, Debug)]
pub struct Occluder {
    /// Centre in face coordinates.
    pub center: (f32, f32),
    /// Half extents in face coordinates.
    pub half: (f32, f32),
    /// Elliptic (a hand) or rectangular (an object).
    pub round: bool,
    /// Fill colour.
    pub color: Rgb,
}

/// Image-level nuisance of one sample.
#[derive(Clone, Debug)]
pub struct Nuisance {
    /// Head pose.
    pub pose: Pose,
    /// Overall exposure multiplier.
    pub gain: f32,
    /// Strength of the directional light's gradient across the image.
    pub light_slope: f32,
    /// Direction the light comes from, in radians.
    pub light_angle: f32,
    /// Per-channel colour cast of the light.
    pub tint: Rgb,
    /// Gaussian blur sigma in pixels at 112 px (0 = sharp).
    pub blur: f32,
    /// Standard deviation of additive pixel noise, on the 0..255 scale.
    pub noise: f32,
    /// JPEG quality the image is saved with.
    pub jpeg_quality: u8,
    /// An occluding object, if any.
    pub occluder: Option<Occluder>,
}

impl Nuisance {
    /// Draws the nuisance of one sample; `skin` colours hands that cover the face.
    pub fn sample(rng: &mut impl Rng, skin: Rgb) -> Nuisance {
        let pose = Pose::sample(rng);
        let occluder = rng.random_bool(0.12).then(|| {
            let round = rng.random_bool(0.5);
            Occluder {
                center: (rng.random_range(-0.24..0.24), rng.random_range(-0.05..0.32)),
                half: (rng.random_range(0.04..0.09), rng.random_range(0.04..0.09)),
                round,
                color: if round {
                    skin
                } else {
                    random_color(rng, 0.0, 1.0)
                },
            }
        });
        Nuisance {
            pose,
            gain: rng.random_range(0.75..1.12),
            light_slope: rng.random_range(0.0..0.6),
            light_angle: rng.random_range(0.0..std::f32::consts::TAU),
            tint: random_color(rng, 0.92, 1.08),
            blur: if rng.random_bool(0.4) {
                rng.random_range(0.3..1.0)
            } else {
                0.0
            },
            noise: rng.random_range(0.0..6.0),
            jpeg_quality: rng.random_range(60..=95),
            occluder,
        }
    }

    /// Draws the occluder, if any, in front of the face.
    pub fn draw_occluder(&self, pm: &mut Pixmap, size: u32) {
        if let Some(o) = self.occluder {
            let ts = self.pose.face_transform(size);
            let (cx, cy) = o.center;
            let shape = if o.round {
                ellipse(cx, cy, o.half.0, o.half.1)
            } else {
                rect(cx, cy, o.half.0, o.half.1)
            };
            fill(pm, shape, o.color, 1.0, ts, None);
        }
    }

    /// Lighting, blur and noise applied to the rendered scene; the result is what gets encoded.
    pub fn finish(&self, pm: &Pixmap, rng: &mut impl Rng) -> RgbImage {
        let (w, h) = (pm.width() as usize, pm.height() as usize);
        // The scene is fully opaque, so premultiplied RGBA equals straight RGB.
        let mut px: Vec<f32> = Vec::with_capacity(3 * w * h);
        for p in pm.data().chunks_exact(4) {
            px.extend_from_slice(&[f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]);
        }
        let sigma = self.blur * w as f32 / REFERENCE_SIZE;
        if sigma > 0.0 {
            gaussian_blur(&mut px, w, h, sigma);
        }
        let noise = noise_field(px.len(), self.noise, rng);
        let mut out = RgbImage::new(w as u32, h as u32);
        // The light falls off linearly along its direction, from the image centre.
        let (dx, dy) = (self.light_angle.cos(), self.light_angle.sin());
        let step = self.gain * self.light_slope * dx / w as f32;
        let rows = out
            .chunks_exact_mut(3 * w)
            .zip(px.chunks_exact(3 * w))
            .zip(noise.chunks_exact(3 * w));
        for (y, ((dst, src), noise)) in rows.enumerate() {
            let fy = y as f32 / h as f32 - 0.5;
            let left = self.gain * (1.0 + self.light_slope * (dy * fy - 0.5 * dx));
            let pixels = dst
                .chunks_exact_mut(3)
                .zip(src.chunks_exact(3))
                .zip(noise.chunks_exact(3));
            for (x, ((d, s), n)) in pixels.enumerate() {
                let light = left + step * x as f32;
                for c in 0..3 {
                    let v = s[c] * light * self.tint[c] + n[c];
                    // Round half up; the clamp keeps the cast in range.
                    d[c] = (v.clamp(0.0, 255.0) + 0.5) as u8;
                }
            }
        }
        out
    }
}

/// `n` samples of zero-mean sensor noise with standard deviation `sigma`. Each sample is the
/// sum of two uniform 16-bit draws (a triangular distribution, close enough to Gaussian for
/// sensor noise), four per 64-bit draw: an exact Gaussian per pixel was a third of the run time.
fn noise_field(n: usize, sigma: f32, rng: &mut impl Rng) -> Vec<f32> {
    // Two uniforms on 0..1 summed have standard deviation sqrt(2/12).
    let scale = sigma / (2.0f32 / 12.0).sqrt() / 65536.0;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let r = rng.next_u64();
        let part = |k: u32| ((r >> (16 * k)) & 0xFFFF) as f32;
        out.push((part(0) + part(1) - 65535.0) * scale);
        out.push((part(2) + part(3) - 65535.0) * scale);
    }
    out.truncate(n);
    out
}

/// Separable Gaussian blur of an interleaved RGB buffer, edges clamped.
fn gaussian_blur(px: &mut [f32], w: usize, h: usize, sigma: f32) {
    let r = (3.0 * sigma).ceil() as usize;
    let kernel: Vec<f32> = (0..=2 * r)
        .map(|i| {
            let d = i as f32 - r as f32;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let row_len = 3 * w;
    // Horizontal: each row padded with copies of its edge pixels, then plain dot products.
    let mut padded = vec![0.0f32; 3 * (w + 2 * r)];
    let mut tmp = vec![0.0f32; px.len()];
    for (src, dst) in px.chunks_exact(row_len).zip(tmp.chunks_exact_mut(row_len)) {
        for i in 0..r {
            padded[3 * i..3 * i + 3].copy_from_slice(&src[..3]);
            let j = r + w + i;
            padded[3 * j..3 * j + 3].copy_from_slice(&src[row_len - 3..]);
        }
        padded[3 * r..3 * (r + w)].copy_from_slice(src);
        for (k, weight) in kernel.iter().enumerate() {
            for (d, s) in dst.iter_mut().zip(&padded[3 * k..3 * k + row_len]) {
                *d += weight * s;
            }
        }
    }
    // Vertical: each output row is a weighted sum of whole input rows (edge rows repeated).
    for (y, dst) in px.chunks_exact_mut(row_len).enumerate() {
        dst.fill(0.0);
        for (k, weight) in kernel.iter().enumerate() {
            let sy = (y + k).saturating_sub(r).min(h - 1);
            for (d, s) in dst.iter_mut().zip(&tmp[sy * row_len..(sy + 1) * row_len]) {
                *d += weight * s;
            }
        }
    }
}

/// Fills the frame with a plain colour and a few random shapes behind the person.
pub fn draw_background(pm: &mut Pixmap, rng: &mut impl Rng) {
    pm.fill(tiny_skia::Color::from_rgba(0.0, 0.0, 0.0, 1.0).expect("valid colour"));
    let ts = Transform::from_scale(pm.width() as f32, pm.height() as f32);
    fill(
        pm,
        rect(0.5, 0.5, 0.5, 0.5),
        random_color(rng, 0.1, 0.95),
        1.0,
        ts,
        None,
    );
    for _ in 0..rng.random_range(3..9) {
        let color = random_color(rng, 0.0, 1.0);
        let alpha = rng.random_range(0.3..1.0);
        let (cx, cy) = (rng.random_range(0.0..1.0), rng.random_range(0.0..1.0));
        let (rx, ry) = (rng.random_range(0.03..0.3), rng.random_range(0.03..0.3));
        match rng.random_range(0..3) {
            0 => fill(pm, ellipse(cx, cy, rx, ry), color, alpha, ts, None),
            1 => fill(pm, rect(cx, cy, rx, ry), color, alpha, ts, None),
            _ => {
                let width = rng.random_range(0.01..0.04);
                stroke(
                    pm,
                    line((cx - rx, cy - ry), (cx + rx, cy + ry)),
                    color,
                    alpha,
                    width,
                    ts,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_has_the_requested_spread() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let v = noise_field(100_001, 5.0, &mut rng);
        assert_eq!(v.len(), 100_001);
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.05 && (sd - 5.0).abs() < 0.05,
            "mean {mean} sd {sd}"
        );
    }

    #[test]
    fn blur_preserves_mean_and_spreads_an_impulse() {
        let (w, h) = (9, 9);
        let mut px = vec![0.0f32; w * h * 3];
        px[3 * (4 * w + 4)] = 81.0;
        gaussian_blur(&mut px, w, h, 1.0);
        let sum: f32 = px.iter().step_by(3).sum();
        assert!((sum - 81.0).abs() < 1e-3);
        assert!(px[3 * (4 * w + 4)] < 81.0 && px[3 * (4 * w + 5)] > 0.0);
        assert!((px[3 * (4 * w + 5)] - px[3 * (5 * w + 4)]).abs() < 1e-4);
    }
}
