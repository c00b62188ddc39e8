//! Charts as PNG bytes: the confusion heatmap (paper Fig. 5), per-class accuracy lines overlaying
//! several runs (paper Fig. 4) and a contact sheet of captioned images.
//!
//! Shapes are drawn with plotters' bitmap backend into an in-memory RGB buffer, text with
//! [`super::text`], and the result is encoded with the `image` crate, so callers decide where
//! (and how atomically) the bytes go.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::EvalError;
use super::metrics::ConfusionMatrix;
use super::text::{HAlign, Label, VAlign, draw_label, fitting_size, text_width};

/// Width and height of the confusion heatmap in pixels.
pub const CONFUSION_SIZE: (u32, u32) = (820, 740);
/// Width and height of the per-class accuracy chart in pixels.
pub const PER_CLASS_SIZE: (u32, u32) = (960, 560);
/// Side of one image tile of a contact sheet in pixels.
pub const TILE_SIDE: u32 = 128;
/// Lines of caption text under each contact-sheet tile.
pub const CAPTION_LINES: usize = 3;

const CAPTION_LINE_HEIGHT: u32 = 16;
const TILE_GAP: u32 = 8;
const GREY_TEXT: [u8; 3] = [90, 90, 90];

/// Line colours of the runs (matplotlib's tab10, readable on white and to most colour-blind eyes).
const RUN_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn plot_error(error: impl std::fmt::Display) -> EvalError {
    EvalError::Plot(error.to_string())
}

/// Draws the shapes from `draw` on `canvas`, then the labels it returns, and encodes the PNG.
fn render_png(
    mut canvas: RgbImage,
    draw: impl FnOnce(&Area<'_>) -> Result<Vec<Label>, EvalError>,
) -> Result<Vec<u8>, EvalError> {
    let (width, height) = canvas.dimensions();
    let labels = {
        let buffer: &mut [u8] = &mut canvas;
        let area = BitMapBackend::with_buffer(buffer, (width, height)).into_drawing_area();
        let labels = draw(&area)?;
        area.present().map_err(plot_error)?;
        labels
    };
    for label in &labels {
        draw_label(&mut canvas, label)?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(
        canvas.as_raw(),
        width,
        height,
        ExtendedColorType::Rgb8,
    )?;
    Ok(png)
}

fn white_canvas((width, height): (u32, u32)) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb([255, 255, 255]))
}

/// Colour of a heatmap cell holding fraction `v` in [0, 1]: white to dark blue.
fn heat_color(v: f64) -> RGBColor {
    let (low, high) = ([247.0, 251.0, 255.0], [8.0, 48.0, 107.0]);
    let mix = |i: usize| (low[i] + (high[i] - low[i]) * v.clamp(0.0, 1.0)) as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

/// Confusion heatmap: rows = true class, columns = predicted class, coloured by the row-normalized
/// fraction; every cell shows the percentage of its row and the count.
pub fn confusion_heatmap(
    counts: &[Vec<u64>],
    class_names: &[&str],
    title: &str,
) -> Result<Vec<u8>, EvalError> {
    let k = class_names.len();
    if k == 0 || counts.len() != k || counts.iter().any(|row| row.len() != k) {
        return Err(EvalError::Input(format!(
            "confusion matrix must be {k} x {k} for {k} class names"
        )));
    }
    let normalized = ConfusionMatrix::from_counts(counts.to_vec())?.row_normalized();
    let (width, height) = CONFUSION_SIZE;
    let (left, top, right, bottom) = (140i32, 70i32, 24i32, 80i32);
    let cell_w = (width as i32 - left - right) / k as i32;
    let cell_h = (height as i32 - top - bottom) / k as i32;
    let grid_bottom = top + cell_h * k as i32;
    let label_size = class_names
        .iter()
        .map(|name| fitting_size(name, (cell_w.min(left) - 10) as f32, 15.0))
        .try_fold(15.0f32, |smallest, size| size.map(|s| smallest.min(s)))?;
    let value_size = (cell_h as f32 / 4.5).clamp(9.0, 18.0);

    let mut labels = vec![
        Label::new(
            title,
            (width as i32 / 2, 26),
            fitting_size(title, width as f32 - 20.0, 24.0)?,
            HAlign::Center,
            VAlign::Middle,
        ),
        Label::new(
            "true class",
            (left / 2, top - 14),
            16.0,
            HAlign::Center,
            VAlign::Middle,
        )
        .color(GREY_TEXT),
        Label::new(
            "predicted class",
            (left + cell_w * k as i32 / 2, grid_bottom + 52),
            16.0,
            HAlign::Center,
            VAlign::Middle,
        )
        .color(GREY_TEXT),
    ];
    for (i, name) in class_names.iter().enumerate() {
        let row_center = top + cell_h * i as i32 + cell_h / 2;
        let column_center = left + cell_w * i as i32 + cell_w / 2;
        labels.push(Label::new(
            *name,
            (left - 8, row_center),
            label_size,
            HAlign::Right,
            VAlign::Middle,
        ));
        labels.push(Label::new(
            *name,
            (column_center, grid_bottom + 18),
            label_size,
            HAlign::Center,
            VAlign::Middle,
        ));
    }
    for (r, row) in counts.iter().enumerate() {
        for (c, &count) in row.iter().enumerate() {
            let v = normalized[r][c];
            let ink = if v > 0.5 { [255, 255, 255] } else { [0, 0, 0] };
            let (cx, cy) = (
                left + cell_w * c as i32 + cell_w / 2,
                top + cell_h * r as i32 + cell_h / 2,
            );
            let percent = format!("{:.1}%", 100.0 * v);
            labels.push(
                Label::new(
                    percent,
                    (cx, cy),
                    value_size,
                    HAlign::Center,
                    VAlign::Bottom,
                )
                .color(ink),
            );
            labels.push(
                Label::new(
                    format!("({count})"),
                    (cx, cy),
                    value_size * 0.75,
                    HAlign::Center,
                    VAlign::Top,
                )
                .color(ink),
            );
        }
    }

    render_png(white_canvas(CONFUSION_SIZE), |area| {
        for (r, row) in normalized.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let (x0, y0) = (left + cell_w * c as i32, top + cell_h * r as i32);
                let corners = [(x0, y0), (x0 + cell_w, y0 + cell_h)];
                area.draw(&Rectangle::new(corners, heat_color(v).filled()))
                    .map_err(plot_error)?;
                area.draw(&Rectangle::new(corners, RGBColor(200, 200, 200)))
                    .map_err(plot_error)?;
            }
        }
        Ok(labels)
    })
}

/// Per-class accuracy lines, one per named run, with a legend (paper Fig. 4). Accuracies are
/// fractions in [0, 1], one per class name, and are drawn as percentages. A single run also gets
/// its values printed at the points.
pub fn per_class_chart(
    runs: &[(String, Vec<f64>)],
    class_names: &[&str],
    title: &str,
) -> Result<Vec<u8>, EvalError> {
    let k = class_names.len();
    if runs.is_empty() || k == 0 {
        return Err(EvalError::Input(
            "a per-class chart needs at least one run and one class".into(),
        ));
    }
    if let Some((name, values)) = runs.iter().find(|(_, v)| v.len() != k) {
        return Err(EvalError::Input(format!(
            "run {name:?} has {} class accuracies, expected {k}",
            values.len()
        )));
    }
    let (width, height) = PER_CLASS_SIZE;
    let (left, top, right, bottom) = (84i32, 56i32, width as i32 - 24, height as i32 - 64);
    let slot = (right - left) as f64 / k as f64;
    let x_of = |class: usize| left + (slot * (class as f64 + 0.5)).round() as i32;
    let y_of =
        |accuracy: f64| bottom - ((bottom - top) as f64 * accuracy.clamp(0.0, 1.0)).round() as i32;

    let mut labels = vec![
        Label::new(
            title,
            (width as i32 / 2, 26),
            fitting_size(title, width as f32 - 20.0, 22.0)?,
            HAlign::Center,
            VAlign::Middle,
        ),
        Label::new(
            "class accuracy (%)",
            (20, (top + bottom) / 2),
            16.0,
            HAlign::Center,
            VAlign::Middle,
        )
        .vertical(),
    ];
    for tick in 0..=10 {
        let label = format!("{}", tick * 10);
        labels.push(Label::new(
            label,
            (left - 8, y_of(f64::from(tick) / 10.0)),
            14.0,
            HAlign::Right,
            VAlign::Middle,
        ));
    }
    let class_size = class_names
        .iter()
        .map(|name| fitting_size(name, slot as f32 - 6.0, 15.0))
        .try_fold(15.0f32, |smallest, size| size.map(|s| smallest.min(s)))?;
    for (i, name) in class_names.iter().enumerate() {
        labels.push(Label::new(
            *name,
            (x_of(i), bottom + 10),
            class_size,
            HAlign::Center,
            VAlign::Top,
        ));
    }
    if let [(_, values)] = runs {
        for (i, &v) in values.iter().enumerate() {
            labels.push(Label::new(
                format!("{:.1}", 100.0 * v),
                (x_of(i), y_of(v) - 8),
                14.0,
                HAlign::Center,
                VAlign::Bottom,
            ));
        }
    }
    let legend_size = 15.0;
    let legend_text = runs
        .iter()
        .map(|(name, _)| text_width(name, legend_size))
        .try_fold(0.0f32, |widest, w| w.map(|w| widest.max(w)))?;
    let legend_w = legend_text.ceil() as i32 + 52;
    let legend_h = runs.len() as i32 * 22 + 10;
    let (legend_x, legend_y) = (right - legend_w - 10, bottom - legend_h - 10);
    let legend_row = |i: usize| legend_y + 16 + 22 * i as i32;
    for (i, (name, _)) in runs.iter().enumerate() {
        labels.push(Label::new(
            name.as_str(),
            (legend_x + 42, legend_row(i)),
            legend_size,
            HAlign::Left,
            VAlign::Middle,
        ));
    }

    render_png(white_canvas(PER_CLASS_SIZE), |area| {
        let draw_line = |points: Vec<(i32, i32)>, style: ShapeStyle| {
            area.draw(&PathElement::new(points, style))
                .map_err(plot_error)
        };
        for tick in 0..=10 {
            let y = y_of(f64::from(tick) / 10.0);
            draw_line(vec![(left, y), (right, y)], RGBColor(225, 225, 225).into())?;
        }
        draw_line(
            vec![(left, top), (left, bottom), (right, bottom)],
            BLACK.stroke_width(1),
        )?;
        for i in 0..k {
            draw_line(vec![(x_of(i), bottom), (x_of(i), bottom + 5)], BLACK.into())?;
        }
        for (i, (_, values)) in runs.iter().enumerate() {
            let color = RUN_COLORS[i % RUN_COLORS.len()];
            let points: Vec<(i32, i32)> = values
                .iter()
                .enumerate()
                .map(|(c, &v)| (x_of(c), y_of(v)))
                .collect();
            draw_line(points.clone(), color.stroke_width(3))?;
            for point in points {
                area.draw(&Circle::new(point, 5, color.filled()))
                    .map_err(plot_error)?;
            }
        }
        let legend_box = [
            (legend_x, legend_y),
            (legend_x + legend_w, legend_y + legend_h),
        ];
        area.draw(&Rectangle::new(legend_box, WHITE.mix(0.9).filled()))
            .map_err(plot_error)?;
        area.draw(&Rectangle::new(legend_box, BLACK))
            .map_err(plot_error)?;
        for i in 0..runs.len() {
            let (y, color) = (legend_row(i), RUN_COLORS[i % RUN_COLORS.len()]);
            draw_line(
                vec![(legend_x + 8, y), (legend_x + 34, y)],
                color.stroke_width(3),
            )?;
        }
        Ok(labels)
    })
}

/// One captioned image of a contact sheet.
#[derive(Clone, Debug)]
pub struct Tile {
    /// The image; it is resized to [`TILE_SIDE`] pixels square.
    pub image: RgbImage,
    /// Up to [`CAPTION_LINES`] lines written under the image.
    pub caption: Vec<String>,
}

/// Grid of tiles, `columns` per row, each with its caption underneath.
pub fn contact_sheet(tiles: &[Tile], columns: usize) -> Result<Vec<u8>, EvalError> {
    if tiles.is_empty() {
        return Err(EvalError::Input(
            "a contact sheet needs at least one image".into(),
        ));
    }
    let columns = columns.clamp(1, tiles.len()) as u32;
    let rows = tiles.len().div_ceil(columns as usize) as u32;
    let cell_w = TILE_SIDE + TILE_GAP;
    let cell_h = TILE_SIDE + CAPTION_LINES as u32 * CAPTION_LINE_HEIGHT + TILE_GAP * 2;
    let mut canvas = white_canvas((columns * cell_w + TILE_GAP, rows * cell_h + TILE_GAP));
    let mut labels = Vec::new();
    for (i, tile) in tiles.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let (x, y) = (TILE_GAP + col * cell_w, TILE_GAP + row * cell_h);
        let resized = image::imageops::resize(
            &tile.image,
            TILE_SIDE,
            TILE_SIDE,
            image::imageops::FilterType::Triangle,
        );
        image::imageops::replace(&mut canvas, &resized, i64::from(x), i64::from(y));
        for (line, text) in tile.caption.iter().take(CAPTION_LINES).enumerate() {
            let top = y + TILE_SIDE + 3 + line as u32 * CAPTION_LINE_HEIGHT;
            let size = fitting_size(text, TILE_SIDE as f32, 13.0)?;
            labels.push(Label::new(
                text.as_str(),
                (x as i32, top as i32),
                size,
                HAlign::Left,
                VAlign::Top,
            ));
        }
    }
    render_png(canvas, |_| Ok(labels))
}
