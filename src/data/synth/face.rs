//! Draws a person with a given expression: the action units move brows, lids, cheeks, nose, lips
//! and jaw of the identity's neutral face.
//!
//! Coordinates are face coordinates (fractions of the image side, origin at the face centre, y
//! down); the pose's transforms map them to pixels, so strokes scale with the face.

use tiny_skia::{FillRule, Mask, Path, Pixmap, Transform};

use super::canvas::{
    curve_through, ellipse, fill, lens, line, polygon, rect, smooth_closed, stroke,
};
use super::expression::{ActionUnits, Au};
use super::identity::{Glasses, HairStyle, Identity, Rgb, mix};
use super::nuisance::Pose;

type Pt = (f32, f32);

const SCLERA: Rgb = [0.95, 0.95, 0.92];
const PUPIL: Rgb = [0.03, 0.02, 0.02];
const MOUTH_INSIDE: Rgb = [0.28, 0.07, 0.08];
const TEETH: Rgb = [0.94, 0.92, 0.85];

fn shade(c: Rgb, k: f32) -> Rgb {
    c.map(|x| x * k)
}

/// A person, a pose and the action units to show.
pub struct Face<'a> {
    /// Who is drawn.
    pub id: &'a Identity,
    /// The expression, identity's resting face included.
    pub aus: ActionUnits,
    /// Where the head is.
    pub pose: Pose,
}

impl Face<'_> {
    /// Draws shoulders, head, features, hair and glasses onto `pm` (background already drawn).
    pub fn draw(&self, pm: &mut Pixmap) {
        let size = pm.width();
        let head = self.pose.face_transform(size);
        let feat = self.pose.feature_transform(size);
        self.draw_body_and_head(pm, head);
        self.draw_beard(pm, head);
        self.draw_brow_and_cheek_lines(pm, feat);
        self.draw_eyes(pm, feat);
        self.draw_brows(pm, feat);
        self.draw_nose(pm, feat);
        self.draw_mouth(pm, feat);
        self.draw_hair_front(pm, head);
        if let Some(g) = self.id.glasses {
            self.draw_glasses(pm, feat, g);
        }
    }

    fn au(&self, au: Au) -> f32 {
        self.aus[au]
    }

    /// Half height of the lower face: the jaw drop lengthens it.
    fn chin_h(&self) -> f32 {
        self.id.face_h + 0.03 * self.au(Au::JawDrop)
    }

    /// A point of the face outline at angle `t` (0 = right cheek, pi/2 = chin).
    fn outline(&self, t: f32) -> Pt {
        let (s, c) = t.sin_cos();
        let lower = s.max(0.0);
        let taper = 1.0 - (1.0 - self.id.chin_taper) * lower * lower;
        let h = if s > 0.0 {
            self.chin_h()
        } else {
            self.id.face_h
        };
        (self.id.face_w * c * taper, h * s)
    }

    fn outline_points(&self, from: f32, to: f32, n: usize) -> Vec<Pt> {
        (0..=n)
            .map(|k| self.outline(from + (to - from) * k as f32 / n as f32))
            .collect()
    }

    fn draw_body_and_head(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let (fw, fh) = (id.face_w, id.face_h);
        if id.hair_style == HairStyle::Long {
            let w = fw + id.hair_volume + 0.03;
            let back = [
                (-w, -0.1),
                (-w - 0.02, 0.3),
                (-w + 0.02, fh + 0.16),
                (w - 0.02, fh + 0.16),
                (w + 0.02, 0.3),
                (w, -0.1),
                (0.7 * w, -fh - 0.06),
                (0.0, -fh - id.hair_volume - 0.04),
                (-0.7 * w, -fh - 0.06),
            ];
            fill(pm, smooth_closed(&back), id.hair, 1.0, ts, None);
        }
        fill(
            pm,
            ellipse(0.0, fh + 0.26, 0.46, 0.17),
            id.clothes,
            1.0,
            ts,
            None,
        );
        fill(
            pm,
            rect(0.0, fh * 0.55 + 0.08, fw * 0.45, fh * 0.45 + 0.04),
            shade(id.skin, 0.82),
            1.0,
            ts,
            None,
        );
        for side in [-1.0, 1.0] {
            let ear = ellipse(side * fw * 0.97, id.eye_y + 0.045, 0.026, 0.048);
            fill(pm, ear, shade(id.skin, 0.9), 1.0, ts, None);
        }
        let n = 48;
        let points: Vec<Pt> = (0..n)
            .map(|k| self.outline(std::f32::consts::TAU * k as f32 / n as f32))
            .collect();
        fill(pm, smooth_closed(&points), id.skin, 1.0, ts, None);
    }

    fn draw_beard(&self, pm: &mut Pixmap, ts: Transform) {
        let Some(alpha) = self.id.beard else { return };
        let id = self.id;
        let start = (id.nose_y / id.face_h).clamp(0.0, 0.9).asin();
        let mut pts = self.outline_points(start, std::f32::consts::PI - start, 24);
        let lip = id.nose_y + 0.022;
        pts.extend([
            (-id.face_w * 0.75, id.nose_y),
            (-id.nose_w * 1.4, lip),
            (id.nose_w * 1.4, lip),
            (id.face_w * 0.75, id.nose_y),
        ]);
        fill(pm, polygon(&pts), id.hair, alpha, ts, None);
    }

    /// Forehead wrinkles (AU1+AU2), the vertical lines between lowered brows (AU4), and raised
    /// cheeks (AU6).
    fn draw_brow_and_cheek_lines(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let line_color = shade(id.skin, 0.62);
        let raise = 0.5 * (self.au(Au::InnerBrowRaiser) + self.au(Au::OuterBrowRaiser));
        let top = id.eye_y - id.brow_gap - 0.045;
        for k in 0..3 {
            let y = top - 0.02 * k as f32;
            let path = curve_through((-0.085, y + 0.004), (0.0, y - 0.004), (0.085, y + 0.004));
            stroke(
                pm,
                path,
                line_color,
                0.7 * (raise - 0.2).max(0.0),
                0.005,
                ts,
            );
        }
        let lower = self.au(Au::BrowLowerer);
        let brow_y = id.eye_y - id.brow_gap + 0.018 * lower;
        for side in [-1.0, 1.0] {
            let path = line(
                (side * 0.011, brow_y + 0.004),
                (side * 0.008, brow_y - 0.026),
            );
            stroke(
                pm,
                path,
                line_color,
                0.8 * (lower - 0.15).max(0.0),
                0.005,
                ts,
            );
        }
        let cheek = self.au(Au::CheekRaiser);
        let blush = mix(id.skin, [0.92, 0.45, 0.45], 0.5);
        for side in [-1.0, 1.0] {
            let apple = ellipse(
                side * (id.eye_dx + 0.01),
                id.eye_y + 0.085 - 0.025 * cheek,
                0.05,
                0.032,
            );
            fill(pm, apple, blush, 0.45 * cheek, ts, None);
        }
    }

    fn draw_eyes(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let (au5, au6, au7) = (
            self.au(Au::UpperLidRaiser),
            self.au(Au::CheekRaiser),
            self.au(Au::LidTightener),
        );
        let w = id.eye_w * (1.0 - 0.08 * au6 - 0.05 * au7);
        let up = id.eye_h * (0.9 + 0.8 * au5 - 0.4 * au7 - 0.35 * au6).max(0.15);
        let low = id.eye_h * (0.85 + 0.2 * au5 - 0.5 * au6 - 0.5 * au7).max(0.1);
        let lid_color = mix(id.hair, [0.05, 0.03, 0.03], 0.6);
        let fold_color = shade(id.skin, 0.72);
        for side in [-1.0, 1.0] {
            let (cx, cy) = (side * id.eye_dx, id.eye_y);
            let inner = (cx - side * w, cy);
            let outer = (cx + side * w, cy - 0.004);
            let top = (cx, cy - up);
            let bottom = (cx, cy + low);
            let opening = lens(inner, top, outer, bottom);
            fill(pm, opening.clone(), SCLERA, 1.0, ts, None);
            if let Some(mask) = opening.as_ref().and_then(|p| mask_of(p, ts, pm)) {
                fill(
                    pm,
                    ellipse(cx, cy - 0.002, id.iris_r, id.iris_r),
                    id.iris,
                    1.0,
                    ts,
                    Some(&mask),
                );
                let r = 0.45 * id.iris_r;
                fill(
                    pm,
                    ellipse(cx, cy - 0.002, r, r),
                    PUPIL,
                    1.0,
                    ts,
                    Some(&mask),
                );
            }
            stroke(
                pm,
                curve_through(inner, top, outer),
                lid_color,
                0.95,
                0.008,
                ts,
            );
            stroke(
                pm,
                curve_through(inner, bottom, outer),
                fold_color,
                0.7,
                0.004,
                ts,
            );
            let crease = (cx, cy - up - 0.014);
            stroke(
                pm,
                curve_through(inner, crease, outer),
                fold_color,
                0.5,
                0.004,
                ts,
            );
            // Raised cheeks and tightened lids bunch the skin under the eye.
            let bunch = au6.max(au7);
            let under = curve_through(
                (cx - side * w * 0.8, cy + low + 0.01),
                (cx, cy + low + 0.017),
                (cx + side * w * 0.8, cy + low + 0.008),
            );
            stroke(pm, under, fold_color, 0.7 * bunch, 0.005, ts);
            // Crow's feet fan out from the outer corner when the cheeks rise.
            for k in [-1.0, 0.0, 1.0] {
                let a: f32 = 0.45 * k;
                let start = (outer.0 + side * 0.01, outer.1);
                let end = (start.0 + side * 0.022 * a.cos(), start.1 + 0.022 * a.sin());
                stroke(pm, line(start, end), fold_color, 0.8 * au6, 0.004, ts);
            }
        }
    }

    fn draw_brows(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let (au1, au2, au4, au9) = (
            self.au(Au::InnerBrowRaiser),
            self.au(Au::OuterBrowRaiser),
            self.au(Au::BrowLowerer),
            self.au(Au::NoseWrinkler),
        );
        let base = id.eye_y - id.brow_gap;
        let color = mix(id.hair, [0.1, 0.07, 0.05], 0.45);
        for side in [-1.0, 1.0] {
            let inner_x = side * (id.eye_dx - id.eye_w * 0.95 - 0.012 * au4);
            let outer_x = side * (id.eye_dx + id.eye_w * 1.15);
            let inner_y = base - 0.034 * au1 + 0.022 * au4 + 0.01 * au9 - 0.006 * au2;
            let outer_y = base + 0.006 - 0.03 * au2 - 0.008 * au1 + 0.004 * au4;
            let arch = 0.01 + 0.012 * au2 + 0.004 * au1 - 0.008 * au4;
            let mid = (0.5 * (inner_x + outer_x), 0.5 * (inner_y + outer_y) - arch);
            let path = curve_through((inner_x, inner_y), mid, (outer_x, outer_y));
            stroke(pm, path, color, 0.95, id.brow_thick, ts);
        }
    }

    fn draw_nose(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let (au9, au10) = (self.au(Au::NoseWrinkler), self.au(Au::UpperLipRaiser));
        let ny = id.nose_y - 0.012 * au9 - 0.006 * au10;
        let nw = id.nose_w * (1.0 + 0.25 * au9 + 0.1 * au10);
        let dark = shade(id.skin, 0.62);
        stroke(
            pm,
            curve_through(
                (-nw * 0.55, ny + 0.004),
                (0.0, ny + 0.012),
                (nw * 0.55, ny + 0.004),
            ),
            dark,
            0.6,
            0.004,
            ts,
        );
        for side in [-1.0, 1.0] {
            fill(
                pm,
                ellipse(side * nw * 0.42, ny + 0.003, 0.01, 0.0055),
                shade(id.skin, 0.4),
                0.85,
                ts,
                None,
            );
            let wing = curve_through(
                (side * nw * 0.8, ny - 0.02),
                (side * nw * 1.05, ny - 0.002),
                (side * nw * 0.6, ny + 0.007),
            );
            stroke(pm, wing, dark, 0.6, 0.004, ts);
        }
        // The side of the bridge, in shadow.
        stroke(
            pm,
            line((-0.014, id.eye_y + 0.015), (-nw * 0.6, ny - 0.025)),
            dark,
            0.25,
            0.005,
            ts,
        );
        for k in 0..3 {
            let y = id.eye_y + 0.006 + 0.01 * k as f32;
            let wrinkle = curve_through((-0.02, y), (0.0, y - 0.004), (0.02, y));
            stroke(pm, wrinkle, dark, 0.8 * au9, 0.0045, ts);
        }
    }

    fn draw_mouth(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let au = |u| self.au(u);
        let (au10, au12, au15, au20, au23, au25, au26) = (
            au(Au::UpperLipRaiser),
            au(Au::LipCornerPuller),
            au(Au::LipCornerDepressor),
            au(Au::LipStretcher),
            au(Au::LipTightener),
            au(Au::LipsPart),
            au(Au::JawDrop),
        );
        let mw = id.mouth_w
            * (1.0 + 0.28 * au12 + 0.38 * au20
                - 0.25 * au23
                - 0.06 * au15
                - 0.25 * au26 * (1.0 - au20));
        let my = id.mouth_y + 0.012 * au26;
        let corner_y = my - 0.042 * au12 + 0.028 * au15 + 0.004 * au20;
        let opening = 0.036 * au25 + 0.07 * au26 + 0.008 * au10;
        let thick = id.lip_thick * (1.0 - 0.55 * au23 - 0.25 * au20 - 0.2 * au12).max(0.25);
        let upper_in = (0.0, my - 0.35 * opening - 0.01 * au10);
        let lower_in = (0.0, my + 0.65 * opening);
        let upper_out = (0.0, upper_in.1 - 0.9 * thick - 0.006 * au10);
        let lower_out = (0.0, lower_in.1 + 1.2 * thick);
        let (l, r) = ((-mw, corner_y), (mw, corner_y));

        // Laugh lines run from the nose wings to beyond the mouth corners.
        let fold = au12
            .max(au10)
            .max(au(Au::NoseWrinkler))
            .max(0.6 * au(Au::CheekRaiser));
        let nw = id.nose_w * (1.0 + 0.25 * au(Au::NoseWrinkler));
        for side in [-1.0, 1.0] {
            let start = (side * (nw + 0.008), id.nose_y - 0.012);
            let end = (side * (mw + 0.018), corner_y + 0.012);
            let mid = (
                0.5 * (start.0 + end.0) + side * 0.014,
                0.5 * (start.1 + end.1),
            );
            stroke(
                pm,
                curve_through(start, mid, end),
                shade(id.skin, 0.6),
                0.12 + 0.55 * fold,
                0.0045,
                ts,
            );
        }

        let line_color = shade(id.lips, 0.45);
        if opening > 0.003 {
            fill(
                pm,
                lens(l, upper_in, r, lower_in),
                MOUTH_INSIDE,
                1.0,
                ts,
                None,
            );
            let teeth_edge = (0.0, upper_in.1 + (0.55 * opening).min(0.014));
            fill(pm, lens(l, upper_in, r, teeth_edge), TEETH, 1.0, ts, None);
            stroke(
                pm,
                curve_through(l, lower_in, r),
                line_color,
                0.6,
                0.003,
                ts,
            );
        }
        fill(pm, lens(l, upper_out, r, upper_in), id.lips, 1.0, ts, None);
        fill(
            pm,
            lens(l, lower_in, r, lower_out),
            mix(id.lips, [1.0, 0.8, 0.8], 0.12),
            1.0,
            ts,
            None,
        );
        stroke(
            pm,
            curve_through(l, upper_in, r),
            line_color,
            0.9,
            0.005,
            ts,
        );
    }

    fn draw_hair_front(&self, pm: &mut Pixmap, ts: Transform) {
        let id = self.id;
        let (alpha, hairline) = match id.hair_style {
            HairStyle::Buzz => (0.35, -id.face_h * 0.62),
            HairStyle::Short | HairStyle::Long => (1.0, -id.face_h * 0.6),
            HairStyle::Fringe => (1.0, id.eye_y - id.brow_gap - 0.05),
        };
        let grow = |(x, y): Pt| {
            (
                x * (1.0 + id.hair_volume / id.face_w),
                y * (1.0 + id.hair_volume / id.face_h),
            )
        };
        let pi = std::f32::consts::PI;
        let mut pts: Vec<Pt> = self
            .outline_points(pi - 0.12, 2.0 * pi + 0.12, 32)
            .into_iter()
            .map(grow)
            .collect();
        let temple = id.eye_y - 0.015;
        pts.extend([
            (id.face_w * 0.93, temple),
            (id.face_w * 0.62, hairline + 0.02),
            (0.0, hairline),
            (-id.face_w * 0.62, hairline + 0.02),
            (-id.face_w * 0.93, temple),
        ]);
        fill(pm, smooth_closed(&pts), id.hair, alpha, ts, None);
    }

    fn draw_glasses(&self, pm: &mut Pixmap, ts: Transform, g: Glasses) {
        let id = self.id;
        let (rx, ry) = (id.eye_w * 1.35, id.eye_w * 1.05);
        let cy = id.eye_y + 0.004;
        for side in [-1.0, 1.0] {
            let cx = side * id.eye_dx;
            let frame = || {
                if g.round {
                    ellipse(cx, cy, rx, ry)
                } else {
                    rect(cx, cy, rx, ry)
                }
            };
            fill(pm, frame(), g.color, g.tint, ts, None);
            stroke(pm, frame(), g.color, 1.0, 0.007, ts);
            let hinge = (cx + side * rx, cy - 0.3 * ry);
            stroke(
                pm,
                line(hinge, (side * id.face_w * 0.98, cy - 0.01)),
                g.color,
                1.0,
                0.006,
                ts,
            );
        }
        let bridge = curve_through(
            (-(id.eye_dx - rx), cy - 0.005),
            (0.0, cy - 0.015),
            (id.eye_dx - rx, cy - 0.005),
        );
        stroke(pm, bridge, g.color, 1.0, 0.006, ts);
    }
}

/// A clip mask covering `path`.
fn mask_of(path: &Path, ts: Transform, pm: &Pixmap) -> Option<Mask> {
    let mut mask = Mask::new(pm.width(), pm.height())?;
    mask.fill_path(path, FillRule::Winding, true, ts);
    Some(mask)
}
