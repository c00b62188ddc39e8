//! `y = x * scale[c] + shift[c]` per channel, then a ReLU if asked: the form of a BatchNorm once
//! its statistics are known (training: the batch's; inference: the running ones), applied by the
//! BatchNorm kernels and, at inference, by the convolution kernels as they write their output.

use burn::backend::flex::FlexTensor;

/// Per-channel scale and shift, and whether a ReLU follows.
#[derive(Debug, Clone)]
pub struct ChannelAffine {
    /// Per channel.
    pub scale: Vec<f32>,
    /// Per channel.
    pub shift: Vec<f32>,
    /// Whether the result is clamped at zero.
    pub relu: bool,
}

impl ChannelAffine {
    /// From the per-channel `scale` and `shift` tensors (`[C]`, f32).
    pub fn from_tensors(scale: FlexTensor, shift: FlexTensor, relu: bool) -> Self {
        Self {
            scale: scale.to_contiguous().storage::<f32>().to_vec(),
            shift: shift.to_contiguous().storage::<f32>().to_vec(),
            relu,
        }
    }

    /// Writes the outputs of channel `c` for the inputs `src`.
    pub fn apply(&self, src: &[f32], c: usize, dst: &mut [f32]) {
        let (s, t) = (self.scale[c], self.shift[c]);
        let pairs = dst.iter_mut().zip(src);
        if self.relu {
            pairs.for_each(|(o, &v)| *o = (v * s + t).max(0.0));
        } else {
            pairs.for_each(|(o, &v)| *o = v * s + t);
        }
    }

    /// The gradient `g` of the output for input `v` of a channel with scale `s` and shift `t`,
    /// passed back through the ReLU if `relu` (its mask recomputed from the input).
    #[inline(always)]
    pub fn pass(relu: bool, g: f32, v: f32, s: f32, t: f32) -> f32 {
        if relu && v * s + t <= 0.0 { 0.0 } else { g }
    }
}
