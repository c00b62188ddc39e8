//! Tiny datasets in every format, generated at test time.
#![allow(dead_code)] // each test crate uses a different part of these helpers

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage};

/// Writes `bytes` to `path`, creating folders.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A small picture whose content depends on `seed`, with a left/right asymmetry so that flips show.
pub fn picture(w: u32, h: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 255 / w.max(1)) as u8;
        Rgb([v, seed.wrapping_mul(37), (y * 255 / h.max(1)) as u8])
    })
}

/// JPEG bytes of `img`.
pub fn jpeg_of(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// A JPEG of `picture(w, h, seed)`.
pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    jpeg_of(&picture(w, h, seed))
}

/// PNG bytes of any image.
pub fn png_of(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG header declaring a `w` x `h` RGB image, with a tiny (invalid) data chunk: what a
/// decompression bomb looks like before decoding.
pub fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A RAF-DB basic folder: the label list `list` (its text) and a 100x100 aligned JPEG for every
/// listed name.
pub fn rafdb(root: &Path, list: &str) {
    write(
        &root.join("EmoLabel/list_patition_label.txt"),
        list.as_bytes(),
    );
    for (i, line) in list.lines().enumerate() {
        if let Some(name) = line.split_whitespace().next() {
            write(&rafdb_image(root, name), &jpeg(100, 100, i as u8));
        }
    }
}

/// Where RAF-DB keeps the aligned image of `name`.
pub fn rafdb_image(root: &Path, name: &str) -> PathBuf {
    let stem = name.strip_suffix(".jpg").unwrap();
    root.join(format!("Image/aligned/{stem}_aligned.jpg"))
}

/// One `fer2013.csv` row: emotion, 2304 grey values of `value`, usage.
pub fn fer_row(emotion: u8, value: u8, usage: &str) -> String {
    let pixels = vec![value.to_string(); 48 * 48].join(" ");
    format!("{emotion},{pixels},{usage}")
}

/// The path of a file under the shared data folder.
pub fn shared(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")).join(rel)
}
