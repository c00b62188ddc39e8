//! A labelled grid of samples, one row per class, to see what the benchmark looks like.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ImageEncoder, Rgb, RgbImage};
use rayon::prelude::*;

use super::labels::LabelPlan;
use super::writer::encode_jpeg;
use super::{Split, SynthConfig, SynthError, render_planned};
use crate::classes::{CLASS_NAMES, NUM_BASIC};
use crate::util::write_atomic;

/// Most samples per class a sheet shows.
pub const MAX_PER_CLASS: usize = 32;
const GAP: u32 = 2;
const BACKGROUND: Rgb<u8> = Rgb([32, 32, 36]);
const INK: Rgb<u8> = Rgb([235, 235, 235]);

/// Draws `per_class` unblended samples of every class (rows in canonical order, class names at
/// the left) as they look once saved as JPEG, and writes the grid to `path` as PNG.
pub fn contact_sheet(cfg: &SynthConfig, per_class: usize, path: &Path) -> Result<(), SynthError> {
    cfg.validate()?;
    if !(1..=MAX_PER_CLASS).contains(&per_class) {
        return Err(SynthError::InvalidConfig(format!(
            "samples per class {per_class} is outside 1..={MAX_PER_CLASS}"
        )));
    }
    // Pure expressions show what each class is; blends would only blur the rows.
    let cfg = SynthConfig {
        ambiguity: 0.0,
        ..cfg.clone()
    };
    let cells: Vec<RgbImage> = (0..NUM_BASIC * per_class)
        .into_par_iter()
        .map(|i| {
            let class = i / per_class;
            let plan = LabelPlan {
                clean: class,
                given: class,
                flipped: false,
            };
            let (img, meta) = render_planned(&cfg, Split::Train, i, plan);
            // Show the JPEG artefacts the benchmark's images have.
            encode_jpeg(&img, meta.jpeg_quality)
                .and_then(|bytes| image::load_from_memory(&bytes))
                .map(|decoded| decoded.to_rgb8())
                .map_err(|source| SynthError::Encode {
                    path: path.to_path_buf(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;

    let size = cfg.size;
    let scale = (size / 40).max(1);
    let label_w = (longest_name() as u32 * GLYPH_ADVANCE + 2) * scale;
    let width = label_w + per_class as u32 * (size + GAP) + GAP;
    let height = NUM_BASIC as u32 * (size + GAP) + GAP;
    let mut sheet = RgbImage::from_pixel(width, height, BACKGROUND);
    for (i, cell) in cells.iter().enumerate() {
        let (row, col) = ((i / per_class) as u32, (i % per_class) as u32);
        let (x0, y0) = (label_w + GAP + col * (size + GAP), GAP + row * (size + GAP));
        image::imageops::replace(&mut sheet, cell, x0 as i64, y0 as i64);
    }
    for (row, name) in CLASS_NAMES[..NUM_BASIC].iter().enumerate() {
        let y = GAP + row as u32 * (size + GAP) + (size - GLYPH_H * scale) / 2;
        draw_text(&mut sheet, name, scale, y);
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&sheet, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|source| SynthError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &png).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

const GLYPH_W: u32 = 5;
/// Glyph rows: 7 above the baseline and 2 for descenders.
const GLYPH_H: u32 = 9;
const GLYPH_ADVANCE: u32 = GLYPH_W + 1;

fn longest_name() -> usize {
    CLASS_NAMES[..NUM_BASIC]
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0)
}

/// Writes `text` at the left margin, `scale` pixels per font pixel.
fn draw_text(img: &mut RgbImage, text: &str, scale: u32, y0: u32) {
    for (k, ch) in text.chars().enumerate() {
        let x0 = scale * (1 + k as u32 * GLYPH_ADVANCE);
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (x, y) = (x0 + col * scale + dx, y0 + row as u32 * scale + dy);
                            if x < img.width() && y < img.height() {
                                img.put_pixel(x, y, INK);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A 5x9 bitmap of the lowercase letters the class names use (others draw blank); each row's
/// low 5 bits, most significant bit leftmost.
fn glyph(ch: char) -> [u8; GLYPH_H as usize] {
    match ch {
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00, 0x00],
        'd' => [0x01, 0x01, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x00, 0x00],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00, 0x00],
        'f' => [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00, 0x00],
        'g' => [0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00],
        'i' => [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00],
        'l' => [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00],
        'o' => [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00],
        'p' => [0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00],
        's' => [0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0x00, 0x00],
        't' => [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00, 0x00],
        _ => [0; GLYPH_H as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_name_letter_has_a_glyph() {
        for name in &CLASS_NAMES[..NUM_BASIC] {
            for ch in name.chars() {
                assert_ne!(glyph(ch), [0; 9], "letter {ch:?} of {name}");
            }
        }
    }
}
