//! Annotated copies of the inputs: every face's box in its class's colour with a tag above it
//! naming the class and its probability. Text uses the embedded chart font (`eval::text`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};

use super::{FacePrediction, PredictError};
use crate::data::decode::{decode, read_file};
use crate::eval::text::{HAlign, Label, VAlign, draw_label, text_width};

/// One colour per class, in class order (Tableau 10), so a class looks the same in every image.
const CLASS_COLORS: [[u8; 3]; 8] = [
    [255, 127, 14],  // surprise
    [148, 103, 189], // fear
    [140, 86, 75],   // disgust
    [44, 160, 44],   // happiness
    [31, 119, 180],  // sadness
    [214, 39, 40],   // anger
    [127, 127, 127], // neutral
    [227, 119, 194], // contempt
];

/// Draws the boxes and tags of `faces` onto `image`.
pub fn draw_faces(image: &mut RgbImage, faces: &[FacePrediction]) -> Result<(), String> {
    for face in faces {
        let color = CLASS_COLORS[face.class_index % CLASS_COLORS.len()];
        let [x, y, w, h] = face.bbox.map(i64::from);
        let t = (w.min(h) / 40).clamp(2, 8);
        fill_rect(image, x, y, x + w, y + t, color);
        fill_rect(image, x, y + h - t, x + w, y + h, color);
        fill_rect(image, x, y, x + t, y + h, color);
        fill_rect(image, x + w - t, y, x + w, y + h, color);

        let text = format!(
            "{} {:.2}",
            face.label, face.probabilities[face.class_index].1
        );
        let size = (w as f32 / 5.0).clamp(12.0, 40.0);
        let tag_w = text_width(&text, size).map_err(|e| e.to_string())?.ceil() as i64 + 6;
        let tag_h = size.ceil() as i64 + 4;
        // Above the box where there is room, else inside its top edge.
        let tag_y = if y >= tag_h { y - tag_h } else { y };
        fill_rect(image, x, tag_y, x + tag_w, tag_y + tag_h, color);
        let luma =
            0.299 * f32::from(color[0]) + 0.587 * f32::from(color[1]) + 0.114 * f32::from(color[2]);
        let ink = if luma > 150.0 {
            [0, 0, 0]
        } else {
            [255, 255, 255]
        };
        let label = Label::new(
            text,
            (x as i32 + 3, tag_y as i32 + 2),
            size,
            HAlign::Left,
            VAlign::Top,
        );
        draw_label(image, &label.color(ink)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Fills the rectangle `[x0, x1) x [y0, y1)`, clipped to the image.
fn fill_rect(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    for y in y0.clamp(0, h)..y1.clamp(0, h) {
        for x in x0.clamp(0, w)..x1.clamp(0, w) {
            image.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

/// Decodes `input`, draws `faces` on it and writes it to `out` (atomically), as JPEG when `out`
/// ends in `.jpg`/`.jpeg` and as PNG otherwise.
pub fn write_annotated(
    input: &Path,
    faces: &[FacePrediction],
    out: &Path,
    max_pixels: u64,
) -> Result<(), PredictError> {
    let fail = |message: String| PredictError::Annotate {
        path: out.to_path_buf(),
        message,
    };
    let mut image = read_file(input)
        .and_then(|bytes| decode(&bytes, max_pixels))
        .map_err(|e| fail(format!("{}: {e}", input.display())))?;
    draw_faces(&mut image, faces).map_err(fail)?;
    let mut bytes = Vec::new();
    if is_jpeg_name(out) {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&image)
            .map_err(|e| fail(e.to_string()))?;
    } else {
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|e| fail(e.to_string()))?;
    }
    crate::util::write_atomic(out, &bytes).map_err(|e| fail(e.to_string()))
}

fn is_jpeg_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// The annotated copy's path inside `dir` for an input at `relative`: the same relative path
/// (`.png` when the input is neither JPEG nor PNG by name), with `-2`, `-3`... added before the
/// extension when an earlier input already took the name.
pub fn annotated_path(dir: &Path, relative: &Path, taken: &mut HashSet<PathBuf>) -> PathBuf {
    let extension = relative
        .extension()
        .filter(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            e == "jpg" || e == "jpeg" || e == "png"
        })
        .map_or_else(|| OsString::from("png"), OsString::from);
    let stem = relative.with_extension("");
    let mut candidate = stem.with_extension(&extension);
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        let mut name = stem.file_name().unwrap_or_default().to_os_string();
        name.push(format!("-{n}"));
        candidate = stem.with_file_name(name).with_extension(&extension);
        n += 1;
    }
    dir.join(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_tags_are_drawn_in_the_class_colour() {
        let mut image = RgbImage::from_pixel(200, 150, Rgb([255, 255, 255]));
        let face = FacePrediction {
            bbox: [60, 60, 80, 80],
            label: "happiness".into(),
            class_index: 3,
            probabilities: (0..7)
                .map(|i| (format!("c{i}"), if i == 3 { 1.0 } else { 0.0 }))
                .collect(),
            uncertainty: 1.0,
        };
        draw_faces(&mut image, &[face]).unwrap();
        let green = Rgb(CLASS_COLORS[3]);
        assert_eq!(*image.get_pixel(60, 100), green, "left edge");
        assert_eq!(*image.get_pixel(139, 100), green, "right edge");
        assert_eq!(
            *image.get_pixel(100, 100),
            Rgb([255, 255, 255]),
            "inside stays clear"
        );
        let tag = (30..60).any(|y| (60..150).any(|x| *image.get_pixel(x, y) == green));
        assert!(tag, "tag above the box");
        let ink = (30..60).any(|y| (60..150).any(|x| image.get_pixel(x, y).0[0] > 200));
        assert!(ink, "text drawn in the tag");
    }

    #[test]
    fn faces_at_the_border_are_clipped() {
        let mut image = RgbImage::new(50, 50);
        let face = FacePrediction {
            bbox: [0, 0, 50, 50],
            label: "fear".into(),
            class_index: 1,
            probabilities: vec![("surprise".into(), 0.4), ("fear".into(), 0.6)],
            uncertainty: 1.0,
        };
        draw_faces(&mut image, &[face]).unwrap();
        assert_eq!(*image.get_pixel(49, 49), Rgb(CLASS_COLORS[1]));
    }

    #[test]
    fn annotated_names_keep_the_layout_and_never_collide() {
        let dir = Path::new("/out");
        let mut taken = HashSet::new();
        let a = annotated_path(dir, Path::new("sub/a.JPG"), &mut taken);
        let b = annotated_path(dir, Path::new("sub/a.JPG"), &mut taken);
        let c = annotated_path(dir, Path::new("notes.txt"), &mut taken);
        assert_eq!(a, Path::new("/out/sub/a.JPG"));
        assert_eq!(b, Path::new("/out/sub/a-2.JPG"));
        assert_eq!(c, Path::new("/out/notes.png"));
    }
}
