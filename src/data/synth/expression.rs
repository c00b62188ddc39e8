//! The expression model: facial action units (FACS) and one prototype of AU intensities per class.
//!
//! Prototypes follow the usual EMFACS descriptions of the basic emotions, so the drawn faces move
//! the same muscles a human coder would look for (brows, lids, nose, lips, jaw).

use std::ops::Index;

use crate::classes::NUM_BASIC;

/// The action units the face model animates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Au {
    /// AU1 inner brow raiser.
    InnerBrowRaiser,
    /// AU2 outer brow raiser.
    OuterBrowRaiser,
    /// AU4 brow lowerer (brows down and drawn together).
    BrowLowerer,
    /// AU5 upper lid raiser (white shows above the iris).
    UpperLidRaiser,
    /// AU6 cheek raiser (cheeks up, eyes narrowed from below, crow's feet).
    CheekRaiser,
    /// AU7 lid tightener (lower lid raised and straightened).
    LidTightener,
    /// AU9 nose wrinkler.
    NoseWrinkler,
    /// AU10 upper lip raiser.
    UpperLipRaiser,
    /// AU12 lip corner puller (smile).
    LipCornerPuller,
    /// AU15 lip corner depressor.
    LipCornerDepressor,
    /// AU20 lip stretcher (mouth pulled wide and flat).
    LipStretcher,
    /// AU23 lip tightener (thin, pressed lips).
    LipTightener,
    /// AU25 lips part.
    LipsPart,
    /// AU26 jaw drop.
    JawDrop,
}

/// Number of modelled action units.
pub const NUM_AUS: usize = 14;

impl Au {
    /// Every modelled unit, in the order of `ActionUnits` entries.
    pub const ALL: [Au; NUM_AUS] = [
        Au::InnerBrowRaiser,
        Au::OuterBrowRaiser,
        Au::BrowLowerer,
        Au::UpperLidRaiser,
        Au::CheekRaiser,
        Au::LidTightener,
        Au::NoseWrinkler,
        Au::UpperLipRaiser,
        Au::LipCornerPuller,
        Au::LipCornerDepressor,
        Au::LipStretcher,
        Au::LipTightener,
        Au::LipsPart,
        Au::JawDrop,
    ];

    /// The FACS code of the unit (AU1, AU2, ...).
    pub fn code(self) -> u8 {
        match self {
            Au::InnerBrowRaiser => 1,
            Au::OuterBrowRaiser => 2,
            Au::BrowLowerer => 4,
            Au::UpperLidRaiser => 5,
            Au::CheekRaiser => 6,
            Au::LidTightener => 7,
            Au::NoseWrinkler => 9,
            Au::UpperLipRaiser => 10,
            Au::LipCornerPuller => 12,
            Au::LipCornerDepressor => 15,
            Au::LipStretcher => 20,
            Au::LipTightener => 23,
            Au::LipsPart => 25,
            Au::JawDrop => 26,
        }
    }
}

/// Intensities (0 = absent, 1 = full) of every modelled action unit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ActionUnits([f32; NUM_AUS]);

impl Index<Au> for ActionUnits {
    type Output = f32;
    fn index(&self, au: Au) -> &f32 {
        &self.0[au as usize]
    }
}

impl ActionUnits {
    /// Builds a vector from `(unit, intensity)` pairs; units not named are 0.
    pub fn from_pairs(pairs: &[(Au, f32)]) -> Self {
        let mut v = [0.0; NUM_AUS];
        for &(au, x) in pairs {
            v[au as usize] = x;
        }
        ActionUnits(v)
    }

    /// Every intensity multiplied by `k`.
    pub fn scaled(self, k: f32) -> Self {
        ActionUnits(self.0.map(|x| x * k))
    }

    /// `(1 - w) * self + w * other`: a face part-way between two expressions.
    pub fn blend(self, other: Self, w: f32) -> Self {
        let mut v = self.0;
        for (a, b) in v.iter_mut().zip(other.0) {
            *a = (1.0 - w) * *a + w * b;
        }
        ActionUnits(v)
    }

    /// Element-wise sum, clamped to the drawable range 0..=1.2.
    pub fn plus(self, other: Self) -> Self {
        let mut v = self.0;
        for (a, b) in v.iter_mut().zip(other.0) {
            *a = (*a + b).clamp(0.0, 1.2);
        }
        ActionUnits(v)
    }
}

/// The full-intensity prototype of canonical class `class` (0 surprise .. 6 neutral).
///
/// AU25/AU26 are added where the mouth opens in the textbook expression; the secondary weights
/// (below 1) keep similar classes apart (surprise's round open mouth vs fear's stretched one).
pub fn prototype(class: usize) -> ActionUnits {
    use Au::*;
    debug_assert!(class < NUM_BASIC);
    match class {
        0 => ActionUnits::from_pairs(&[
            (InnerBrowRaiser, 1.0),
            (OuterBrowRaiser, 1.0),
            (UpperLidRaiser, 0.9),
            (LipsPart, 0.6),
            (JawDrop, 1.0),
        ]),
        1 => ActionUnits::from_pairs(&[
            (InnerBrowRaiser, 1.0),
            (OuterBrowRaiser, 0.6),
            (BrowLowerer, 0.7),
            (UpperLidRaiser, 1.0),
            (LipStretcher, 1.0),
            (LipsPart, 0.7),
            (JawDrop, 0.35),
        ]),
        2 => ActionUnits::from_pairs(&[
            (NoseWrinkler, 1.0),
            (UpperLipRaiser, 1.0),
            (LipCornerDepressor, 0.7),
            (BrowLowerer, 0.3),
        ]),
        3 => {
            ActionUnits::from_pairs(&[(CheekRaiser, 1.0), (LipCornerPuller, 1.0), (LipsPart, 0.5)])
        }
        4 => ActionUnits::from_pairs(&[
            (InnerBrowRaiser, 1.0),
            (BrowLowerer, 0.7),
            (LipCornerDepressor, 1.0),
        ]),
        5 => ActionUnits::from_pairs(&[
            (BrowLowerer, 1.0),
            (UpperLidRaiser, 0.6),
            (LidTightener, 1.0),
            (LipTightener, 1.0),
        ]),
        _ => ActionUnits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototypes_are_distinct_and_neutral_is_empty() {
        for a in 0..NUM_BASIC {
            for b in (a + 1)..NUM_BASIC {
                assert_ne!(prototype(a), prototype(b), "classes {a} and {b}");
            }
        }
        assert_eq!(prototype(6), ActionUnits::default());
        assert_eq!(prototype(3)[Au::LipCornerPuller], 1.0);
        assert_eq!(Au::JawDrop.code(), 26);
    }

    #[test]
    fn blend_interpolates_and_plus_clamps() {
        let m = prototype(3).blend(prototype(4), 0.25);
        assert!((m[Au::LipCornerPuller] - 0.75).abs() < 1e-6);
        assert!((m[Au::LipCornerDepressor] - 0.25).abs() < 1e-6);
        let big = prototype(3).plus(prototype(3));
        assert_eq!(big[Au::CheekRaiser], 1.2);
        assert_eq!(prototype(0).scaled(0.5)[Au::JawDrop], 0.5);
    }
}
