//! Face detection with rustface (a pure-Rust port of the SeetaFace funnel-structured cascade).
//!
//! The detector's model, `seeta_fd_frontal_v1.0.bin` from the rustface 0.1.7 crate package
//! (SeetaFace Detection, BSD 2-Clause, `assets/models/seeta_fd_frontal_v1.0-LICENSE.txt`), is
//! compiled into the binary, so detection never reads or downloads anything.

use std::cell::RefCell;
use std::sync::OnceLock;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{GrayImage, RgbImage};
use rustface::{Detector, ImageData};

static SEETA_FRONTAL: &[u8] = include_bytes!("../../assets/models/seeta_fd_frontal_v1.0.bin");

/// Side of the detector's sliding window: at full resolution it finds faces from about this size
/// up (rustface ignores its own minimum-face setting, so smaller minima cannot be honoured).
pub const DETECTOR_WINDOW: u32 = 40;

/// Settings of the face detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectOptions {
    /// Smallest face side in pixels that is looked for (at least [`DETECTOR_WINDOW`]); larger
    /// values make big photos faster, because the photo is shrunk before the search.
    pub min_face: u32,
    /// Cascade score a window needs to count as a face (rustface's example uses 2.0; higher
    /// values give fewer false detections and miss more faces).
    pub score_threshold: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_face: DETECTOR_WINDOW,
            score_threshold: 2.0,
        }
    }
}

/// A detected face: its box in pixels of the input image, clamped to it, and the cascade score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// `[x, y, width, height]`.
    pub bbox: [u32; 4],
    /// The detector's confidence (higher is surer).
    pub score: f64,
}

/// The embedded detector model, parsed once and cloned into each thread's detector.
fn seeta_model() -> &'static rustface::Model {
    static MODEL: OnceLock<rustface::Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        rustface::read_model(SEETA_FRONTAL)
            .expect("the SeetaFace model compiled into cucn is valid (checked by a unit test)")
    })
}

thread_local! {
    // rustface's detector keeps scratch buffers and is not `Send`: each worker thread gets its own.
    static DETECTOR: RefCell<Option<Box<dyn Detector>>> = const { RefCell::new(None) };
}

/// Finds the faces in `image`, ordered left to right (then top to bottom). An image too small to
/// hold a face of `options.min_face` pixels has none.
pub fn detect_faces(image: &RgbImage, options: &DetectOptions) -> Vec<Detection> {
    let min_face = options.min_face.max(DETECTOR_WINDOW);
    let (width, height) = image.dimensions();
    if width.min(height) < min_face {
        return Vec::new();
    }
    // Shrinking the photo so that `min_face` becomes the window size is what a minimum face size
    // means for a sliding-window detector, and it is where the speed comes from.
    let scale = DETECTOR_WINDOW as f32 / min_face as f32;
    let grey = image::imageops::grayscale(image);
    let grey = if scale < 1.0 {
        shrink(&grey, scale)
    } else {
        grey
    };
    let (gw, gh) = grey.dimensions();
    let mut faces: Vec<Detection> = DETECTOR.with_borrow_mut(|slot| {
        let detector = slot.get_or_insert_with(|| {
            let mut d = rustface::create_detector_with_model(seeta_model().clone());
            d.set_pyramid_scale_factor(0.8);
            d.set_slide_window_step(4, 4);
            d
        });
        detector.set_score_thresh(options.score_threshold.max(f64::MIN_POSITIVE));
        detector
            .detect(&ImageData::new(grey.as_raw(), gw, gh))
            .iter()
            .filter_map(|face| {
                let b = face.bbox();
                let to_input = |v: f64| v / f64::from(scale);
                clamp_box(
                    to_input(f64::from(b.x())),
                    to_input(f64::from(b.y())),
                    to_input(f64::from(b.width())),
                    to_input(f64::from(b.height())),
                    width,
                    height,
                )
                .map(|bbox| Detection {
                    bbox,
                    score: face.score(),
                })
            })
            .collect()
    });
    faces.sort_by_key(|f| (f.bbox[0], f.bbox[1]));
    faces
}

/// A grey image resized by `scale` (< 1) with an antialiasing filter.
fn shrink(grey: &GrayImage, scale: f32) -> GrayImage {
    let w = ((grey.width() as f32 * scale).round() as u32).max(1);
    let h = ((grey.height() as f32 * scale).round() as u32).max(1);
    let src = ImageRef::new(grey.width(), grey.height(), grey.as_raw(), PixelType::U8)
        .expect("a GrayImage buffer always holds width x height bytes");
    let mut dst = Image::new(w, h, PixelType::U8);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .expect("source and destination are both non-empty U8 images");
    GrayImage::from_raw(w, h, dst.into_vec()).expect("the resizer fills w x h bytes")
}

/// The box `(x, y, w, h)` (possibly reaching outside) clamped to a `width` x `height` image as
/// whole pixels; `None` when nothing of it lies inside.
pub fn clamp_box(x: f64, y: f64, w: f64, h: f64, width: u32, height: u32) -> Option<[u32; 4]> {
    let left = x.max(0.0).round();
    let top = y.max(0.0).round();
    let right = (x + w).min(f64::from(width)).round();
    let bottom = (y + h).min(f64::from(height)).round();
    (right - left >= 1.0 && bottom - top >= 1.0).then_some([
        left as u32,
        top as u32,
        (right - left) as u32,
        (bottom - top) as u32,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_parses() {
        assert!(seeta_model().get_hierarchy_count() > 0);
    }

    #[test]
    fn boxes_are_clamped_to_the_image() {
        assert_eq!(
            clamp_box(-5.0, 10.0, 20.0, 20.0, 100, 50),
            Some([0, 10, 15, 20])
        );
        assert_eq!(
            clamp_box(90.0, 40.0, 20.0, 20.0, 100, 50),
            Some([90, 40, 10, 10])
        );
        assert_eq!(clamp_box(120.0, 0.0, 10.0, 10.0, 100, 50), None);
    }

    #[test]
    fn tiny_and_flat_images_have_no_faces() {
        let options = DetectOptions::default();
        assert!(detect_faces(&RgbImage::new(1, 1), &options).is_empty());
        assert!(detect_faces(&RgbImage::new(39, 300), &options).is_empty());
        let flat = RgbImage::from_pixel(200, 150, image::Rgb([128, 128, 128]));
        assert!(detect_faces(&flat, &options).is_empty());
    }

    #[test]
    fn min_face_larger_than_the_image_finds_nothing() {
        let options = DetectOptions {
            min_face: 500,
            ..DetectOptions::default()
        };
        assert!(detect_faces(&RgbImage::new(400, 400), &options).is_empty());
    }
}
