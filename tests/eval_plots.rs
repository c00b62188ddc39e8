//! Charts: valid PNGs of the documented size, with visible content that depends on the data.

use cucn::eval::plots::{
    CONFUSION_SIZE, PER_CLASS_SIZE, TILE_SIDE, Tile, confusion_heatmap, contact_sheet,
    per_class_chart,
};
use cucn::eval::text::{HAlign, Label, VAlign, draw_label, text_width};
use image::{Rgb, RgbImage};

/// The seven basic classes, in canonical order.
const NAMES: &[&str] = cucn::classes::CLASS_NAMES
    .split_at(cucn::classes::NUM_BASIC)
    .0;

fn decode(png: &[u8]) -> RgbImage {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    image::load_from_memory(png)
        .expect("decodable PNG")
        .to_rgb8()
}

fn count_pixels(image: &RgbImage, predicate: impl Fn(&Rgb<u8>) -> bool) -> usize {
    image.pixels().filter(|p| predicate(p)).count()
}

fn non_white(image: &RgbImage) -> f64 {
    count_pixels(image, |p| p.0 != [255, 255, 255]) as f64 / (image.width() * image.height()) as f64
}

fn near(p: &Rgb<u8>, color: [u8; 3]) -> bool {
    p.0.iter().zip(color).all(|(&a, b)| a.abs_diff(b) <= 6)
}

fn diagonal(k: usize, hits: u64, misses: u64) -> Vec<Vec<u64>> {
    (0..k)
        .map(|r| (0..k).map(|c| if r == c { hits } else { misses }).collect())
        .collect()
}

#[test]
fn heatmap_has_the_documented_size_and_colours_follow_the_values() {
    let strong = decode(&confusion_heatmap(&diagonal(7, 90, 2), NAMES, "strong").unwrap());
    assert_eq!(strong.dimensions(), CONFUSION_SIZE);
    let fraction = non_white(&strong);
    assert!(
        fraction > 0.3 && fraction < 0.99,
        "non-white fraction {fraction}"
    );
    // Dark cells (row fraction > 0.5) only where the diagonal dominates.
    let dark = |img: &RgbImage| count_pixels(img, |p| p.0[0] < 60 && p.0[2] > 90);
    let uniform = decode(&confusion_heatmap(&diagonal(7, 5, 5), NAMES, "uniform").unwrap());
    assert!(
        dark(&strong) > 7 * 3000,
        "diagonal cells should be dark: {}",
        dark(&strong)
    );
    assert_eq!(dark(&uniform), 0, "no cell of a uniform matrix is dark");
}

#[test]
fn heatmap_rejects_a_matrix_of_the_wrong_shape() {
    assert!(confusion_heatmap(&diagonal(6, 1, 0), NAMES, "x").is_err());
    assert!(confusion_heatmap(&[], &[], "x").is_err());
}

#[test]
fn per_class_chart_draws_one_coloured_line_per_run() {
    let tab_blue = [31, 119, 180];
    let tab_orange = [255, 127, 14];
    let one = vec![(
        "baseline".to_string(),
        vec![0.9, 0.4, 0.5, 0.95, 0.8, 0.7, 0.85],
    )];
    let single = decode(&per_class_chart(&one, NAMES, "one run").unwrap());
    assert_eq!(single.dimensions(), PER_CLASS_SIZE);
    assert!(count_pixels(&single, |p| near(p, tab_blue)) > 1000);
    assert_eq!(count_pixels(&single, |p| near(p, tab_orange)), 0);

    let mut two = one.clone();
    two.push((
        "+W+CBAM".to_string(),
        vec![0.85, 0.6, 0.6, 0.9, 0.82, 0.75, 0.8],
    ));
    let overlay = decode(&per_class_chart(&two, NAMES, "two runs").unwrap());
    assert!(count_pixels(&overlay, |p| near(p, tab_orange)) > 1000);
}

#[test]
fn per_class_chart_rejects_mismatched_values() {
    let runs = vec![("r".to_string(), vec![0.5; 6])];
    let message = per_class_chart(&runs, NAMES, "t").unwrap_err().to_string();
    assert!(message.contains("6 class accuracies"), "{message}");
    assert!(per_class_chart(&[], NAMES, "t").is_err());
}

#[test]
fn contact_sheet_lays_out_tiles_with_captions() {
    let red = RgbImage::from_pixel(60, 40, Rgb([220, 20, 20]));
    let tiles: Vec<Tile> = (0..5)
        .map(|i| Tile {
            image: red.clone(),
            caption: vec![format!("#{i}"), "given: fear".into(), "pred: anger".into()],
        })
        .collect();
    let sheet = decode(&contact_sheet(&tiles, 3).unwrap());
    // 3 columns x 2 rows of 128-px tiles with 8-px gaps and three 16-px caption lines.
    assert_eq!(
        sheet.dimensions(),
        (3 * (TILE_SIDE + 8) + 8, 2 * (TILE_SIDE + 48 + 16) + 8)
    );
    let red_pixels = count_pixels(&sheet, |p| near(p, [220, 20, 20]));
    assert_eq!(red_pixels, 5 * (TILE_SIDE * TILE_SIDE) as usize);
    let ink = count_pixels(&sheet, |p| p.0[0] < 100 && p.0[1] < 100 && p.0[2] < 100);
    assert!(ink > 500, "captions should be drawn: {ink} dark pixels");
    assert!(contact_sheet(&[], 3).is_err());
}

#[test]
fn text_is_measured_and_drawn_inside_its_box() {
    let short = text_width("fear", 16.0).unwrap();
    let long = text_width("happiness", 16.0).unwrap();
    assert!(short > 10.0 && long > short && text_width("fear", 32.0).unwrap() > 1.9 * short);

    let mut canvas = RgbImage::from_pixel(200, 100, Rgb([255, 255, 255]));
    draw_label(
        &mut canvas,
        &Label::new("happiness", (100, 50), 16.0, HAlign::Center, VAlign::Middle),
    )
    .unwrap();
    let inked: Vec<(u32, u32)> = canvas
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < 128)
        .map(|(x, y, _)| (x, y))
        .collect();
    assert!(inked.len() > 50);
    let (min_x, max_x) = (
        inked.iter().map(|p| p.0).min().unwrap(),
        inked.iter().map(|p| p.0).max().unwrap(),
    );
    let (min_y, max_y) = (
        inked.iter().map(|p| p.1).min().unwrap(),
        inked.iter().map(|p| p.1).max().unwrap(),
    );
    assert!((max_x - min_x) as f32 <= long + 1.0 && (max_x - min_x) as f32 > long * 0.8);
    assert!(
        ((min_x + max_x) / 2).abs_diff(100) <= 3,
        "centred horizontally"
    );
    assert!(
        min_y >= 40 && max_y <= 60,
        "within the line box around y = 50"
    );

    // Vertical text is taller than wide; text off the canvas is clipped without panicking.
    let mut tall = RgbImage::from_pixel(60, 200, Rgb([255, 255, 255]));
    draw_label(
        &mut tall,
        &Label::new("accuracy", (30, 100), 16.0, HAlign::Center, VAlign::Middle).vertical(),
    )
    .unwrap();
    let ys: Vec<u32> = tall
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < 128)
        .map(|(_, y, _)| y)
        .collect();
    assert!(ys.iter().max().unwrap() - ys.iter().min().unwrap() > 50);
    draw_label(
        &mut tall,
        &Label::new("off", (-500, -500), 16.0, HAlign::Left, VAlign::Top),
    )
    .unwrap();
}
