//! Text for the charts, drawn with an embedded font straight onto an RGB image.
//!
//! The font is DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans-LICENSE.txt`),
//! compiled in so that charts look the same on every machine. Text is rasterized here with
//! `ab_glyph` rather than through plotters' `ab_glyph` feature because plotters 0.3.7 places each
//! glyph at the pen position without its side bearing, which visibly breaks words apart
//! ("an ger").

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use image::{GrayImage, Luma, Rgb, RgbImage};

use super::EvalError;

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn font() -> Result<&'static FontRef<'static>, EvalError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(DEJAVU_SANS).ok())
        .as_ref()
        .ok_or_else(|| EvalError::Plot("the embedded font could not be loaded".into()))
}

/// Horizontal placement of a label relative to its anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HAlign {
    /// The anchor is the left edge.
    Left,
    /// The anchor is the centre.
    Center,
    /// The anchor is the right edge.
    Right,
}

/// Vertical placement of a label relative to its anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VAlign {
    /// The anchor is the top of the line box.
    Top,
    /// The anchor is the middle of the line box.
    Middle,
    /// The anchor is the bottom of the line box.
    Bottom,
}

/// A piece of text to draw at a pixel position.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// The text (one line).
    pub text: String,
    /// Anchor point in pixels.
    pub at: (i32, i32),
    /// Font size in pixels (height of the line box).
    pub size: f32,
    /// Text colour.
    pub color: [u8; 3],
    /// Horizontal alignment to the anchor.
    pub h_align: HAlign,
    /// Vertical alignment to the anchor.
    pub v_align: VAlign,
    /// Rotated a quarter turn counter-clockwise (reads bottom to top), for vertical axis titles.
    pub vertical: bool,
}

impl Label {
    /// Black, horizontal text with the given size and alignment.
    pub fn new(
        text: impl Into<String>,
        at: (i32, i32),
        size: f32,
        h_align: HAlign,
        v_align: VAlign,
    ) -> Self {
        Label {
            text: text.into(),
            at,
            size,
            color: [0, 0, 0],
            h_align,
            v_align,
            vertical: false,
        }
    }

    /// The same label in another colour.
    pub fn color(mut self, color: [u8; 3]) -> Self {
        self.color = color;
        self
    }

    /// The same label rotated to read bottom to top.
    pub fn vertical(mut self) -> Self {
        self.vertical = true;
        self
    }
}

/// Advance width of `text` at `size` pixels, kerning included.
pub fn text_width(text: &str, size: f32) -> Result<f32, EvalError> {
    let scaled = font()?.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous: Option<GlyphId> = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    Ok(width)
}

/// Largest size up to `max` (and at least 8 px) at which `text` fits in `width` pixels.
pub fn fitting_size(text: &str, width: f32, max: f32) -> Result<f32, EvalError> {
    let mut size = max;
    while size > 8.0 && text_width(text, size)? > width {
        size -= 0.5;
    }
    Ok(size)
}

/// Coverage mask of `label`'s text, horizontal, one line box high.
fn rasterize(label: &Label) -> Result<GrayImage, EvalError> {
    let font = font()?;
    let scale = PxScale::from(label.size);
    let scaled = font.as_scaled(scale);
    let width = text_width(&label.text, label.size)?.ceil() as u32 + 2;
    let height = (scaled.ascent() - scaled.descent()).ceil() as u32 + 2;
    let mut mask = GrayImage::new(width, height);
    let mut pen = 1.0;
    let mut previous: Option<GlyphId> = None;
    for c in label.text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(pen, 1.0 + scaled.ascent()));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                let px = bounds.min.x as i64 + i64::from(x);
                let py = bounds.min.y as i64 + i64::from(y);
                if (0..i64::from(width)).contains(&px) && (0..i64::from(height)).contains(&py) {
                    let pixel = mask.get_pixel_mut(px as u32, py as u32);
                    let value = (coverage.clamp(0.0, 1.0) * 255.0).round() as u8;
                    pixel.0[0] = pixel.0[0].max(value);
                }
            });
        }
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    Ok(mask)
}

/// Blends `label` onto `canvas`; parts outside the canvas are clipped.
pub fn draw_label(canvas: &mut RgbImage, label: &Label) -> Result<(), EvalError> {
    let mut mask = rasterize(label)?;
    if label.vertical {
        mask = image::imageops::rotate270(&mask);
    }
    let (w, h) = (mask.width() as i32, mask.height() as i32);
    let left = match label.h_align {
        HAlign::Left => label.at.0,
        HAlign::Center => label.at.0 - w / 2,
        HAlign::Right => label.at.0 - w,
    };
    let top = match label.v_align {
        VAlign::Top => label.at.1,
        VAlign::Middle => label.at.1 - h / 2,
        VAlign::Bottom => label.at.1 - h,
    };
    for (x, y, Luma([alpha])) in mask.enumerate_pixels() {
        let (cx, cy) = (left + x as i32, top + y as i32);
        if *alpha == 0
            || cx < 0
            || cy < 0
            || cx >= canvas.width() as i32
            || cy >= canvas.height() as i32
        {
            continue;
        }
        let a = f32::from(*alpha) / 255.0;
        let Rgb(pixel) = canvas.get_pixel_mut(cx as u32, cy as u32);
        for (channel, &ink) in pixel.iter_mut().zip(&label.color) {
            *channel = (f32::from(*channel) * (1.0 - a) + f32::from(ink) * a).round() as u8;
        }
    }
    Ok(())
}
