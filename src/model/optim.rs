//! The paper's optimizer: PyTorch `Adam` (L2 weight decay added to the gradient, not AdamW) with
//! two parameter groups (the classifier `fc` has its own learning rate) and ExponentialLR stepped
//! once per epoch.
//!
//! Burn's `Adam` matches `torch.optim.Adam` once its epsilon is set to PyTorch's 1e-8 (Burn's
//! default is 1e-5); the update `m̂ / (sqrt(v̂) + eps)` and the L2 term are the same. On the CPU
//! the steps run as [`FusedAdam`], bit-identical to Burn's `Adam` in one pass. Groups are
//! Burn's `ModuleOptimizer::with_group` and `ModuleLrScheduler::with_group`, keyed by the
//! classifier's parameter ids (ids survive a burnpack save/load, so resumed runs keep them).

use burn::config::Config;
use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};

use super::fused_adam::FusedAdam;
use super::network::Cucn;

/// Optimizer and schedule settings (METHOD.md, "Optimization").
#[derive(Config, Debug, PartialEq)]
pub struct OptimConfig {
    /// Learning rate of everything but the classifier.
    #[config(default = 1e-4)]
    pub lr: f64,
    /// Learning rate of the final classifier `fc`.
    #[config(default = 5e-4)]
    pub fc_lr: f64,
    /// L2 penalty added to the gradient.
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// ExponentialLR decay per epoch.
    #[config(default = 0.9)]
    pub gamma: f64,
    /// Adam beta 1.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Adam beta 2.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// Adam epsilon (PyTorch's default).
    #[config(default = 1e-8)]
    pub eps: f64,
}

/// Adam with the classifier group and the per-epoch exponential schedule.
pub struct CucnOptimizer {
    config: OptimConfig,
    optim: ModuleOptimizer,
    fc_group: ParamGroup,
    epoch: usize,
}

impl OptimConfig {
    fn adam(&self) -> AdamConfig {
        AdamConfig::new()
            .with_beta_1(self.beta1 as f32)
            .with_beta_2(self.beta2 as f32)
            .with_epsilon(self.eps as f32)
            .with_weight_decay(
                (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32)),
            )
    }

    fn fused_adam(&self) -> FusedAdam {
        FusedAdam::new(
            self.beta1 as f32,
            self.beta2 as f32,
            self.eps as f32,
            (self.weight_decay > 0.0).then_some(self.weight_decay as f32),
            self.adam().build(),
        )
    }

    fn module_optimizer(&self, fc_group: &ParamGroup) -> ModuleOptimizer {
        ModuleOptimizer::from(self.fused_adam()).with_group(
            fc_group.clone(),
            self.fused_adam(),
            None,
        )
    }

    /// Builds the optimizer for `model` (the classifier group is `model.fc`'s parameters).
    pub fn init(&self, model: &Cucn) -> CucnOptimizer {
        let fc_group = ParamGroup::ids_from_module(model.fc.clone());
        let optim = self.module_optimizer(&fc_group);
        CucnOptimizer {
            config: self.clone(),
            optim,
            fc_group,
            epoch: 0,
        }
    }
}

impl CucnOptimizer {
    /// Learning rates `(backbone and head, classifier)` of the current epoch:
    /// `lr * gamma^epoch`, as `ExponentialLR` stepped once per epoch.
    pub fn learning_rates(&self) -> (f64, f64) {
        let decay = self.config.gamma.powi(self.epoch as i32);
        (self.config.lr * decay, self.config.fc_lr * decay)
    }

    /// Epochs completed (scheduler steps taken).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// One Adam step of every parameter with a gradient.
    pub fn step(&mut self, model: Cucn, grads: GradientsParams) -> Cucn {
        let (lr, fc_lr) = self.learning_rates();
        // A constant-rate scheduler per step is how Burn builds a per-group learning rate.
        let mut schedule = ModuleLrScheduler::new(lr).with_group(self.fc_group.clone(), fc_lr);
        self.optim.step(schedule.step(), model, grads)
    }

    /// Steps the scheduler: call once at the end of every epoch.
    pub fn end_epoch(&mut self) {
        self.epoch += 1;
    }

    /// The Adam moments of every parameter, as burnpack bytes.
    pub fn state_bytes(&self) -> Result<Vec<u8>, String> {
        self.optim
            .into_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }

    /// Restores the Adam moments saved by [`state_bytes`](Self::state_bytes) and the scheduler
    /// position. The model must have been loaded from a cucn file (parameter ids are kept).
    pub fn restore(&mut self, bytes: Vec<u8>, epoch: usize) -> Result<(), String> {
        let fresh = self.config.module_optimizer(&self.fc_group);
        self.optim = fresh
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| e.to_string())?;
        self.epoch = epoch;
        Ok(())
    }
}
