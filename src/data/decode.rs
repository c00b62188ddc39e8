//! Turning a sample's source into 8-bit RGB pixels: JPEG or PNG decoding (grey, grey+alpha, RGBA,
//! CMYK and 16-bit all end as RGB8), a size limit checked from the header before any pixel memory
//! is allocated (decompression bombs), and the face-box crop.

use std::io::Cursor;
use std::path::Path;

use image::{ImageDecoder, ImageFormat, ImageReader, RgbImage};

use super::sample::{CropBox, ImageSource};

/// Default limit on an image's pixel count: 64 megapixels, far above any face photograph and far
/// below what would exhaust memory when a few workers decode at once.
pub const DEFAULT_MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Reads the header of an encoded image: its width and height, after checking that it is a JPEG
/// or PNG within `max_pixels`. Returns the problem as text on failure.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), String> {
    let decoder = open_decoder(bytes, max_pixels)?;
    Ok(decoder.dimensions())
}

/// Decodes an encoded JPEG or PNG image into RGB8, refusing images over `max_pixels`.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, String> {
    let decoder = open_decoder(bytes, max_pixels)?;
    let image = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("corrupt or truncated image: {e}"))?;
    Ok(image.into_rgb8())
}

fn open_decoder(bytes: &[u8], max_pixels: u64) -> Result<impl ImageDecoder + '_, String> {
    if bytes.is_empty() {
        return Err("file is empty (0 bytes)".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    let is_jpeg = reader.format() == Some(ImageFormat::Jpeg);
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png) => {}
        Some(other) => {
            return Err(format!(
                "unsupported image format {other:?} (only JPEG and PNG are read)"
            ));
        }
        None => return Err("not a JPEG or PNG image (unrecognized content)".into()),
    }
    let decoder = reader
        .into_decoder()
        .map_err(|e| format!("corrupt image header: {e}"))?;
    if is_jpeg && !jpeg_reaches_end(bytes) {
        return Err("truncated JPEG (data ends before the end-of-image marker)".into());
    }
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "image is {w}x{h} ({:.1} megapixels), over the limit of {:.1} megapixels \
             (possible decompression bomb)",
            pixels as f64 / 1e6,
            max_pixels as f64 / 1e6
        ));
    }
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    Ok(decoder)
}

/// Whether a JPEG's segments run up to its end-of-image marker. The JPEG decoder fills a
/// truncated scan with grey instead of failing, so truncation is detected here: the walk skips
/// every segment by its length (so a thumbnail inside an APP segment is not mistaken for the
/// image's end) and the entropy-coded data up to the next real marker.
fn jpeg_reaches_end(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let mut i = 2; // after SOI
    while i + 1 < n {
        if bytes[i] != 0xFF {
            i += 1; // tolerate stray bytes between segments, as decoders do
            continue;
        }
        let marker = bytes[i + 1];
        match marker {
            0xD9 => return true,
            0xFF => {
                i += 1; // fill byte
                continue;
            }
            0x01 | 0xD0..=0xD8 => {
                i += 2; // markers without a length
                continue;
            }
            _ => {}
        }
        if i + 4 > n {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        i += 2 + len;
        if marker == 0xDA {
            // Entropy-coded data: FF 00 is a stuffed byte, FF D0..D7 a restart marker; any other
            // FF xx starts the next segment.
            loop {
                let Some(p) = bytes
                    .get(i..)
                    .and_then(|r| r.iter().position(|&b| b == 0xFF))
                else {
                    return false;
                };
                let p = i + p;
                match bytes.get(p + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => i = p + 1,
                    Some(_) => {
                        i = p;
                        break;
                    }
                }
            }
        }
    }
    false
}

/// Reads a file whole; a missing file is named as such.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "image file not found".to_string(),
        _ => format!("cannot read image file: {e}"),
    })
}

/// The RGB8 pixels of a sample's source, cropped to its face box if it has one.
pub fn source_rgb(source: &ImageSource, max_pixels: u64) -> Result<RgbImage, String> {
    match source {
        ImageSource::File { path, crop } => {
            let image = decode(&read_file(path)?, max_pixels)?;
            match crop {
                Some(b) => crop_to(&image, b),
                None => Ok(image),
            }
        }
        ImageSource::Grey {
            width,
            height,
            pixels,
        } => {
            let rgb = pixels.iter().flat_map(|&g| [g, g, g]).collect();
            RgbImage::from_raw(*width, *height, rgb)
                .ok_or_else(|| format!("expected {} grey values", width * height))
        }
    }
}

/// Checks that a sample's image can be used and returns the source image's width and height:
/// with `full` the whole image is decoded (catching corrupt and truncated data), otherwise only
/// its header is read.
pub fn verify(source: &ImageSource, max_pixels: u64, full: bool) -> Result<(u32, u32), String> {
    match source {
        ImageSource::File { path, crop } => {
            let bytes = read_file(path)?;
            let (w, h) = if full {
                decode(&bytes, max_pixels)?.dimensions()
            } else {
                probe(&bytes, max_pixels)?
            };
            if let Some(b) = crop {
                clamp_box(b, w, h)?;
            }
            Ok((w, h))
        }
        ImageSource::Grey { width, height, .. } => Ok((*width, *height)),
    }
}

/// Crops to the face box, clamped to the image.
fn crop_to(image: &RgbImage, b: &CropBox) -> Result<RgbImage, String> {
    let (left, top, w, h) = clamp_box(b, image.width(), image.height())?;
    Ok(image::imageops::crop_imm(image, left, top, w, h).to_image())
}

/// The face box clamped to a `w` x `h` image as whole pixels (left, top, width, height); a box
/// wholly outside is an error.
fn clamp_box(b: &CropBox, w: u32, h: u32) -> Result<(u32, u32, u32, u32), String> {
    let left = b.left.max(0.0).floor();
    let top = b.top.max(0.0).floor();
    let right = (b.left + b.width).min(f64::from(w)).ceil();
    let bottom = (b.top + b.height).min(f64::from(h)).ceil();
    if right - left < 1.0 || bottom - top < 1.0 {
        return Err(format!(
            "face box (x {}, y {}, w {}, h {}) lies outside the {w}x{h} image",
            b.left, b.top, b.width, b.height
        ));
    }
    Ok((
        left as u32,
        top as u32,
        (right - left) as u32,
        (bottom - top) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    #[test]
    fn crop_is_clamped_to_the_image() {
        let img = gradient(20, 10);
        let b = CropBox {
            left: -5.0,
            top: 2.0,
            width: 10.0,
            height: 100.0,
        };
        let c = crop_to(&img, &b).unwrap();
        assert_eq!(c.dimensions(), (5, 8));
        assert_eq!(c.get_pixel(0, 0), img.get_pixel(0, 2));
        let outside = CropBox { left: 30.0, ..b };
        assert!(crop_to(&img, &outside).unwrap_err().contains("outside"));
    }

    #[test]
    fn size_limit_is_checked_before_decoding() {
        let mut png = Vec::new();
        gradient(30, 20)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(probe(&png, 600).unwrap(), (30, 20));
        assert!(
            decode(&png, 599)
                .unwrap_err()
                .contains("decompression bomb")
        );
    }
}
