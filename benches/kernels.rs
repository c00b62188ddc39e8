//! Where a training step's time goes, per operation, on the CPU (`flex`):
//! - cucn's convolution kernels against `flex`'s own convolution on the network's shapes at batch
//!   32 (forward, input gradient, weight gradient; the largest difference between the two is
//!   printed, as a check), and for size-keeping 3x3 kernels Winograd's algorithm, which `cpu_conv`
//!   takes for them at this batch;
//! - on the small maps of `layer3`/`layer4`, the one im2col product over the batch against
//!   Winograd's algorithm over the batch (`cpu_conv`'s choice there at this batch);
//! - forward and backward of each stage of the network (stem pieces, each block and its parts)
//!   at batch 32 under autodiff, as a training step runs them.
//!
//! Every figure is the median of 7 runs (5 for the layers). Run:
//! `cargo bench --bench kernels` (env `CUCN_BENCH_SIZE`, default 112: the input side in pixels).

use std::time::Instant;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use cucn::model::CucnConfig;
use cucn::model::conv::conv2d;
use cucn::model::cpu_max_pool::max_pool2d;
use cucn::model::shifted_conv::{Arrangement, Geometry, forward, taps, weight_grad};
use cucn::model::{im2col_conv, tiled_im2col, winograd, winograd_batch};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median milliseconds of `runs` calls, and the last result.
fn time<T>(runs: usize, f: impl Fn() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..runs {
        let start = Instant::now();
        result = Some(f());
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    (median(times), result.expect("at least one run"))
}

fn values(t: FlexTensor) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Deterministic values in [-1, 1).
fn pattern(len: usize, step: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (i * step % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// cucn's convolutions (shifted products; per-tile columns for few input channels) against
/// `flex`'s, for the large maps of the network.
fn convolutions(size: usize) {
    println!("convolutions, batch 32, ms (flex -> cucn), largest difference");
    let s = size / 4; // layer1's side
    for (cin, cout, side, k, stride, padding) in [
        (3, 64, size, 7, 2, 3),
        (64, 64, s, 3, 1, 1),
        (64, 128, s, 3, 2, 1),
        (64, 128, s, 1, 2, 0),
        (128, 128, s / 2, 3, 1, 1),
        (2, 1, s, 7, 1, 3),
    ] {
        let n = 32;
        let x = pattern(n * cin * side * side, 7919);
        let w: Vec<f32> = pattern(cout * cin * k * k, 104_729)
            .iter()
            .map(|v| v * 0.1)
            .collect();
        let g = Geometry::new([n, cin, side, side], cout, k, stride, padding);
        let dy = pattern(n * cout * g.ho * g.wo, 31);
        let xt = FlexTensor::from_data(TensorData::new(x.clone(), [n, cin, side, side]));
        let wt = FlexTensor::from_data(TensorData::new(w.clone(), [cout, cin, k, k]));
        let dyt = FlexTensor::from_data(TensorData::new(dy.clone(), [n, cout, g.ho, g.wo]));
        let options = ConvOptions::new([stride; 2], [padding; 2], [1; 2], 1);
        let dims = [cout, cin, k, k];
        let (flex_fwd, reference) = time(7, || {
            values(Flex::conv2d(xt.clone(), wt.clone(), None, options.clone()))
        });
        // The two methods for large maps, as `cpu_conv` chooses between them.
        let shallow = tiled_im2col::suits(&g);
        let (ours_fwd, ours) = time(7, || {
            if shallow {
                tiled_im2col::forward(&x, &w, &g, None)
            } else {
                forward(&x, &taps(&w, dims, Arrangement::Forward), &g, None)
            }
        });
        let (flex_dw, reference_dw) = time(7, || {
            values(Flex::conv2d_weight_backward(
                xt.clone(),
                wt.clone(),
                dyt.clone(),
                options.clone(),
            ))
        });
        let (ours_dw, dw) = time(7, || {
            if shallow {
                tiled_im2col::weight_grad(&x, &dy, &g)
            } else {
                weight_grad(&x, &dy, &g)
            }
        });
        let (flex_dx, reference_dx) = time(7, || {
            values(Flex::conv2d_x_backward(
                xt.clone(),
                wt.clone(),
                dyt.clone(),
                options.clone(),
            ))
        });
        // cucn's input gradient for stride 1: the flipped kernel over the output gradient.
        let dx = (stride == 1).then(|| {
            let gx = Geometry::new([n, cout, g.ho, g.wo], cin, k, 1, k - 1 - padding);
            time(7, || {
                forward(&dy, &taps(&w, dims, Arrangement::Flipped), &gx, None)
            })
        });
        let dx_text = match dx {
            Some((t, dx)) => format!(
                "{flex_dx:6.1} -> {t:6.1} ({:.0e})",
                max_diff(&reference_dx, &dx)
            ),
            None => format!("{flex_dx:6.1} (flex's kept)"),
        };
        println!(
            "{cin:3} -> {cout:3} ch, {side:3} px, {k}x{k} stride {stride}: forward {flex_fwd:6.1} -> \
             {ours_fwd:6.1} ({:.0e}) | input grad {dx_text} | weight grad {flex_dw:6.1} -> \
             {ours_dw:6.1} ({:.0e})",
            max_diff(&reference, &ours),
            max_diff(&reference_dw, &dw),
        );
        if winograd::suits(&g) {
            // What `cpu_conv` runs for these shapes at batch 32 (see `winograd::MIN_PIXELS`).
            let (fwd, ours) = time(7, || {
                let u = winograd::kernel(&w, dims, Arrangement::Forward);
                winograd::forward(&x, &u, &g, None)
            });
            let gx = Geometry::new([n, cout, g.ho, g.wo], cin, k, 1, 1);
            let (dx_ms, dx) = time(7, || {
                let u = winograd::kernel(&w, dims, Arrangement::Flipped);
                winograd::forward(&dy, &u, &gx, None)
            });
            let (dw_ms, dw) = time(7, || winograd::weight_grad(&x, &dy, &g));
            println!(
                "{:>37} forward {fwd:6.1} ({:.0e}) | input grad {dx_ms:6.1} ({:.0e}) | weight grad \
                 {dw_ms:6.1} ({:.0e})",
                "Winograd F(2x2, 3x3):",
                max_diff(&reference, &ours),
                max_diff(&reference_dx, &dx),
                max_diff(&reference_dw, &dw),
            );
        }
    }
}

/// The small maps' size-keeping 3x3 convolutions (`layer3`/`layer4`: 7 x 7 and 4 x 4 at 112 px):
/// the one im2col product over the batch against Winograd's over the batch, which `cpu_conv`
/// takes for them at this batch (see `winograd_batch::MIN_COLUMNS`).
fn small_maps(size: usize) {
    println!(
        "small maps, 3x3 stride 1, batch 32, ms (im2col -> Winograd over the batch), largest difference"
    );
    let layer3 = size.div_ceil(16);
    for (channels, side) in [(256, layer3), (512, layer3.div_ceil(2))] {
        let n = 32;
        let x = pattern(n * channels * side * side, 7919);
        let w: Vec<f32> = pattern(channels * channels * 9, 104_729)
            .iter()
            .map(|v| v * 0.1)
            .collect();
        let g = Geometry::new([n, channels, side, side], channels, 3, 1, 1);
        let dy = pattern(n * channels * side * side, 31);
        let pair = [channels, channels];
        let (im2col_fwd, reference) = time(7, || im2col_conv::forward(&x, &w, &g, None));
        let (im2col_bwd, (reference_dx, reference_dw)) =
            time(7, || im2col_conv::backward(&x, &w, &dy, &g, true));
        let reference_dx = reference_dx.expect("the input gradient");
        let (fwd, ours) = time(7, || {
            winograd_batch::forward(&x, &w, pair, Arrangement::Forward, &g, None)
        });
        let (dx_ms, dx) = time(7, || {
            winograd_batch::forward(&dy, &w, pair, Arrangement::Flipped, &g, None)
        });
        let (dw_ms, dw) = time(7, || winograd_batch::weight_grad(&x, &dy, &g));
        println!(
            "{channels:3} ch, {side} px: forward {im2col_fwd:6.1} -> {fwd:6.1} ({:.0e}) | input + weight \
             grad {im2col_bwd:6.1} -> {dx_ms:6.1} + {dw_ms:6.1} ({:.0e}, {:.0e})",
            max_diff(&reference, &ours),
            max_diff(&reference_dx, &dx),
            max_diff(&reference_dw, &dw),
        );
    }
}

/// Forward and backward milliseconds of `f` on `x` (a fresh leaf each run), and its output.
fn stage(name: &str, x: &Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
    let (mut forward_ms, mut backward_ms) = (Vec::new(), Vec::new());
    let mut out = None;
    for _ in 0..5 {
        let leaf = x.clone().detach().require_grad();
        let start = Instant::now();
        let y = f(leaf.clone());
        let _ = y.clone().sum().into_scalar::<f32>();
        forward_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let grads = (y.clone() * y.clone().detach()).sum().backward();
        let _ = leaf
            .grad(&grads)
            .expect("input gradient")
            .sum()
            .into_scalar::<f32>();
        backward_ms.push(start.elapsed().as_secs_f64() * 1e3);
        out = Some(y.detach());
    }
    println!(
        "{name:28} forward {:6.1}  backward {:6.1}",
        median(forward_ms),
        median(backward_ms)
    );
    out.expect("at least one run")
}

fn layers(size: usize) {
    println!("\nlayers, batch 32, {size} px, training mode, ms");
    let device = Device::default().autodiff();
    let model = CucnConfig::new()
        .with_input_size(size)
        .init(&device)
        .expect("the default network");
    let images = Tensor::<4>::random([32, 3, size, size], Distribution::Default, &device);
    let x = stage("conv1", &images, |x| conv2d(&model.conv1, x));
    let x = stage("bn1 + relu", &x, |x| model.bn1.forward_relu(x));
    let plain = x.clone().inner();
    let (inference_ms, _) = time(7, || max_pool2d(plain.clone(), 3, 2, 1).into_data());
    println!("{:28} forward {inference_ms:6.1}", "max pool (inference)");
    let mut x = stage("max pool", &x, |x| max_pool2d(x, 3, 2, 1));
    let stages = [
        ("layer1", &model.layer1),
        ("layer2", &model.layer2),
        ("layer3", &model.layer3),
        ("layer4", &model.layer4),
    ];
    for (name, blocks) in stages {
        for (i, block) in blocks.iter().enumerate() {
            let y = stage(&format!("{name}.{i} conv1+bn1+relu"), &x, |x| {
                block.bn1.forward_relu(conv2d(&block.conv1, x))
            });
            let z = stage(&format!("{name}.{i} conv2+bn2"), &y, |y| {
                block.bn2.forward(conv2d(&block.conv2, y))
            });
            if let Some(cbam) = &block.cbam {
                stage(&format!("{name}.{i} cbam"), &z, |z| cbam.forward(z));
            }
            x = stage(&format!("{name}.{i} whole block"), &x, |x| block.forward(x));
        }
    }
}

fn main() {
    let size = std::env::var("CUCN_BENCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(112);
    convolutions(size);
    small_maps(size);
    layers(size);
}
