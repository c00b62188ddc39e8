//! RGB8 image to network input: SIMD resize to S x S (bilinear convolution, as PIL's antialiased
//! bilinear that torchvision uses), scale to [0, 1] and ImageNet normalization, written planar
//! (CHW) into a caller's slice so that batches are filled without copies.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use crate::classes::{IMAGENET_MEAN, IMAGENET_STD};

/// Resizes and normalizes images to one size, reusing its buffers between calls.
pub struct Preprocessor {
    size: u32,
    resizer: Resizer,
    resized: Image<'static>,
    /// `(v / 255 - mean[c]) / std[c]` for every byte value `v` and channel `c`.
    lut: [[f32; 256]; 3],
}

impl Preprocessor {
    /// A preprocessor producing `size` x `size` images.
    pub fn new(size: u32) -> Self {
        let mut lut = [[0.0; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
        Preprocessor {
            size,
            resizer: Resizer::new(),
            resized: Image::new(size, size, PixelType::U8x3),
            lut,
        }
    }

    /// The output side length S.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Number of floats one image occupies: 3 x S x S.
    pub fn tensor_len(&self) -> usize {
        3 * (self.size as usize).pow(2)
    }

    /// Writes the normalized CHW tensor of `image` into `out` (length `tensor_len()`).
    pub fn write_tensor(&mut self, image: &RgbImage, out: &mut [f32]) {
        assert_eq!(
            out.len(),
            self.tensor_len(),
            "output slice has the wrong length"
        );
        let pixels: &[u8] = if image.dimensions() == (self.size, self.size) {
            image.as_raw()
        } else {
            let src = ImageRef::new(
                image.width(),
                image.height(),
                image.as_raw(),
                PixelType::U8x3,
            )
            .expect("an RgbImage buffer always holds width x height x 3 bytes");
            let options =
                ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            self.resizer
                .resize(&src, &mut self.resized, &options)
                .expect("source and destination are both non-empty U8x3 images");
            self.resized.buffer()
        };
        let plane = (self.size as usize).pow(2);
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let [lr, lg, lb] = &self.lut;
        // Zipped iterators let the compiler drop every bounds check in this hot loop.
        for ((px, r), (g, b)) in pixels
            .chunks_exact(3)
            .zip(r.iter_mut())
            .zip(g.iter_mut().zip(b.iter_mut()))
        {
            *r = lr[px[0] as usize];
            *g = lg[px[1] as usize];
            *b = lb[px[2] as usize];
        }
    }

    /// The normalized CHW tensor of `image` as a new vector.
    pub fn tensor(&mut self, image: &RgbImage) -> Vec<f32> {
        let mut out = vec![0.0; self.tensor_len()];
        self.write_tensor(image, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_image_normalizes_to_imagenet_values() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([255, 0, 128]));
        let t = Preprocessor::new(16).tensor(&img);
        assert_eq!(t.len(), 3 * 16 * 16);
        let expect = [
            (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
            (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
            (128.0 / 255.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
        ];
        for (c, plane) in t.chunks_exact(256).enumerate() {
            assert!(
                plane.iter().all(|v| (v - expect[c]).abs() < 1e-5),
                "channel {c}"
            );
        }
    }

    #[test]
    fn resize_keeps_left_right_structure() {
        // Left half black, right half white: after resizing, the left column stays dark and the
        // right column bright.
        let img = RgbImage::from_fn(100, 100, |x, _| {
            let v = if x < 50 { 0 } else { 255 };
            image::Rgb([v, v, v])
        });
        let t = Preprocessor::new(224).tensor(&img);
        let black = (0.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        let white = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        assert!((t[224 * 100] - black).abs() < 1e-5);
        assert!((t[224 * 100 + 223] - white).abs() < 1e-5);
    }
}
