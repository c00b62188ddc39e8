//! Who is in the picture: face shape, feature spacing, colours, hair and accessories.
//!
//! Lengths are fractions of the image side at pose scale 1, measured from the face centre
//! (y grows downwards).

use rand::Rng;

use super::expression::{ActionUnits, Au};

/// An RGB colour with components in 0..=1.
pub type Rgb = [f32; 3];

/// Hair styles; each is drawn as a cap over the head plus optional parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HairStyle {
    /// Shaved or very short: a faint cap.
    Buzz,
    /// A short cap with the hairline high on the forehead.
    Short,
    /// A cap plus hair falling behind the head to the shoulders.
    Long,
    /// A cap with a fringe down to just above the brows.
    Fringe,
}

/// Spectacle frames around the eyes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Glasses {
    /// Round (true) or rectangular frames.
    pub round: bool,
    /// Frame colour.
    pub color: Rgb,
    /// Opacity of the lens tint (0 = clear).
    pub tint: f32,
}

/// One synthetic person.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Half width of the face at cheek level.
    pub face_w: f32,
    /// Half height of the face (forehead top to chin).
    pub face_h: f32,
    /// Chin width as a fraction of the cheek width.
    pub chin_taper: f32,
    /// Vertical position of the eye centres.
    pub eye_y: f32,
    /// Horizontal distance of each eye centre from the midline.
    pub eye_dx: f32,
    /// Half width of an eye.
    pub eye_w: f32,
    /// Half height of the open eye above its centre line, neutral.
    pub eye_h: f32,
    /// Iris radius.
    pub iris_r: f32,
    /// Gap between eye centre and brow, neutral.
    pub brow_gap: f32,
    /// Brow stroke width.
    pub brow_thick: f32,
    /// Vertical position of the nostrils.
    pub nose_y: f32,
    /// Half width of the nostril wings.
    pub nose_w: f32,
    /// Vertical position of the mouth line.
    pub mouth_y: f32,
    /// Half width of the mouth, neutral.
    pub mouth_w: f32,
    /// Lip thickness, neutral.
    pub lip_thick: f32,
    /// Skin colour.
    pub skin: Rgb,
    /// Lip colour.
    pub lips: Rgb,
    /// Iris colour.
    pub iris: Rgb,
    /// Hair, brow and beard colour.
    pub hair: Rgb,
    /// Hair style.
    pub hair_style: HairStyle,
    /// Hair volume: how far the cap stands out from the head.
    pub hair_volume: f32,
    /// Spectacles, if worn.
    pub glasses: Option<Glasses>,
    /// Beard opacity, if any (stubble to full).
    pub beard: Option<f32>,
    /// Clothing colour of the shoulders.
    pub clothes: Rgb,
    /// A person's resting face: a little of a few AUs even when neutral.
    pub resting: ActionUnits,
}

/// Linear interpolation between two colours.
pub(crate) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// A random colour with each component in `lo..hi`.
pub fn random_color(rng: &mut impl Rng, lo: f32, hi: f32) -> Rgb {
    [0; 3].map(|_| rng.random_range(lo..hi))
}

impl Identity {
    /// Draws a random person.
    pub fn sample(rng: &mut impl Rng) -> Identity {
        let skin_t: f32 = rng.random();
        let skin = mix([0.96, 0.82, 0.71], [0.36, 0.23, 0.16], skin_t);
        let skin = [0, 1, 2].map(|i| (skin[i] + rng.random_range(-0.03..0.03)).clamp(0.0, 1.0));
        let lips = mix(skin, [0.62, 0.22, 0.25], rng.random_range(0.35..0.6));
        let iris = [
            [0.25, 0.15, 0.08],
            [0.35, 0.5, 0.7],
            [0.3, 0.45, 0.3],
            [0.12, 0.08, 0.05],
        ][rng.random_range(0..4)];
        let hair = [
            [0.08, 0.06, 0.05],
            [0.3, 0.18, 0.1],
            [0.75, 0.6, 0.35],
            [0.55, 0.25, 0.1],
            [0.6, 0.6, 0.6],
        ][rng.random_range(0..5)];
        let hair_style = [
            HairStyle::Buzz,
            HairStyle::Short,
            HairStyle::Long,
            HairStyle::Fringe,
        ][rng.random_range(0..4)];
        let glasses = rng.random_bool(0.2).then(|| Glasses {
            round: rng.random_bool(0.5),
            color: random_color(rng, 0.0, 0.5),
            tint: if rng.random_bool(0.3) {
                rng.random_range(0.1..0.35)
            } else {
                0.0
            },
        });
        let beard = rng.random_bool(0.15).then(|| rng.random_range(0.25..0.7));
        // A resting face: two units at low intensity, which makes some neutral faces look a
        // little sad or stern, as real ones do.
        let mut resting = Vec::new();
        for _ in 0..2 {
            let au = Au::ALL[rng.random_range(0..Au::ALL.len())];
            resting.push((au, rng.random_range(0.0..0.15)));
        }
        Identity {
            face_w: rng.random_range(0.25..0.30),
            face_h: rng.random_range(0.33..0.37),
            chin_taper: rng.random_range(0.5..0.75),
            eye_y: rng.random_range(-0.06..-0.03),
            eye_dx: rng.random_range(0.105..0.125),
            eye_w: rng.random_range(0.048..0.058),
            eye_h: rng.random_range(0.021..0.026),
            iris_r: rng.random_range(0.021..0.025),
            brow_gap: rng.random_range(0.045..0.058),
            brow_thick: rng.random_range(0.015..0.023),
            nose_y: rng.random_range(0.075..0.10),
            nose_w: rng.random_range(0.032..0.045),
            mouth_y: rng.random_range(0.165..0.195),
            mouth_w: rng.random_range(0.072..0.09),
            lip_thick: rng.random_range(0.012..0.019),
            skin,
            lips,
            iris,
            hair,
            hair_style,
            hair_volume: rng.random_range(0.01..0.045),
            glasses,
            beard,
            clothes: random_color(rng, 0.05, 0.9),
            resting: ActionUnits::from_pairs(&resting),
        }
    }
}
