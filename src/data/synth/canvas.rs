//! Thin helpers over tiny-skia: antialiased fills and strokes in a colour and opacity, and the
//! path shapes the face model is made of.

use tiny_skia::{
    FillRule, LineCap, Mask, Paint, Path, PathBuilder, Pixmap, Rect, Stroke, Transform,
};

use super::identity::Rgb;

fn paint(color: Rgb, alpha: f32) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(
        to_u8(color[0]),
        to_u8(color[1]),
        to_u8(color[2]),
        to_u8(alpha),
    );
    p.anti_alias = true;
    p
}

fn to_u8(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Fills `path` (in the coordinates `ts` maps to pixels), optionally clipped by `mask`. A
/// degenerate shape (`None`, from a zero-size rectangle or ellipse) draws nothing.
pub fn fill(
    pm: &mut Pixmap,
    path: Option<Path>,
    color: Rgb,
    alpha: f32,
    ts: Transform,
    mask: Option<&Mask>,
) {
    if let (Some(path), true) = (path, alpha > 0.0) {
        pm.fill_path(&path, &paint(color, alpha), FillRule::Winding, ts, mask);
    }
}

/// Strokes `path` with round caps; `width` is in path units.
pub fn stroke(
    pm: &mut Pixmap,
    path: Option<Path>,
    color: Rgb,
    alpha: f32,
    width: f32,
    ts: Transform,
) {
    if let (Some(path), true) = (path, alpha > 0.0) {
        let s = Stroke {
            width,
            line_cap: LineCap::Round,
            ..Stroke::default()
        };
        pm.stroke_path(&path, &paint(color, alpha), &s, ts, None);
    }
}

/// An axis-aligned ellipse centred at `(cx, cy)`.
pub fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32) -> Option<Path> {
    PathBuilder::from_oval(Rect::from_xywh(cx - rx, cy - ry, 2.0 * rx, 2.0 * ry)?)
}

/// A rectangle centred at `(cx, cy)`.
pub fn rect(cx: f32, cy: f32, rx: f32, ry: f32) -> Option<Path> {
    Some(PathBuilder::from_rect(Rect::from_xywh(
        cx - rx,
        cy - ry,
        2.0 * rx,
        2.0 * ry,
    )?))
}

/// A straight segment.
pub fn line(a: (f32, f32), b: (f32, f32)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.0, a.1);
    pb.line_to(b.0, b.1);
    pb.finish()
}

/// A quadratic curve from `a` to `b` that passes through `mid` at its half-way point.
pub fn curve_through(a: (f32, f32), mid: (f32, f32), b: (f32, f32)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.0, a.1);
    let c = control_through(a, mid, b);
    pb.quad_to(c.0, c.1, b.0, b.1);
    pb.finish()
}

/// The control point of the quadratic from `a` to `b` whose midpoint is `mid`.
pub fn control_through(a: (f32, f32), mid: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    (
        2.0 * mid.0 - 0.5 * (a.0 + b.0),
        2.0 * mid.1 - 0.5 * (a.1 + b.1),
    )
}

/// The closed region between two curves that share their end points `a` and `b`, one through
/// `mid1`, the other through `mid2` (a lip, an eye opening).
pub fn lens(a: (f32, f32), mid1: (f32, f32), b: (f32, f32), mid2: (f32, f32)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.0, a.1);
    let c1 = control_through(a, mid1, b);
    pb.quad_to(c1.0, c1.1, b.0, b.1);
    let c2 = control_through(b, mid2, a);
    pb.quad_to(c2.0, c2.1, a.0, a.1);
    pb.close();
    pb.finish()
}

/// A smooth closed curve through the midpoints of a polygon's edges, using its corners as
/// quadratic control points (a closed quadratic B-spline).
pub fn smooth_closed(points: &[(f32, f32)]) -> Option<Path> {
    let n = points.len();
    let mid = |i: usize| {
        let (a, b) = (points[i % n], points[(i + 1) % n]);
        ((a.0 + b.0) * 0.5, (a.1 + b.1) * 0.5)
    };
    let mut pb = PathBuilder::new();
    let start = mid(0);
    pb.move_to(start.0, start.1);
    for i in 1..=n {
        let (c, m) = (points[i % n], mid(i));
        pb.quad_to(c.0, c.1, m.0, m.1);
    }
    pb.close();
    pb.finish()
}

/// A polygon through `points`, closed.
pub fn polygon(points: &[(f32, f32)]) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let (first, rest) = points.split_first()?;
    pb.move_to(first.0, first.1);
    for p in rest {
        pb.line_to(p.0, p.1);
    }
    pb.close();
    pb.finish()
}
