//! Device lists on the command line (`--devices`).

use burn::tensor::Device;

/// A device list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Not a device name.
    #[error("--devices: '{0}' is not a device (expected cuda:N, a GPU index N, or cpu; e.g. 0,1)")]
    Unknown(String),
    /// A GPU named in a build without a GPU feature.
    #[error(
        "--devices: '{0}' is a GPU, but this cucn was built without one: rebuild with \
         `cargo build --release --features cuda`"
    )]
    NoGpuBuild(String),
    /// The same GPU twice.
    #[error("--devices: '{0}' appears twice")]
    Repeated(String),
    /// Nothing in the list.
    #[error("--devices: the list is empty")]
    Empty,
}

/// Parses a comma-separated device list: `cuda:N` or a bare index `N` for NVIDIA GPU N (builds
/// with the `cuda` feature), `cpu` for Burn's CPU backend. The first device holds the model; each
/// takes a share of every training batch. `cpu` may repeat (replicas on the one CPU: no faster,
/// but it runs the multi-device path anywhere).
pub fn parse_devices(list: &str) -> Result<Vec<Device>, DeviceError> {
    let mut seen = Vec::new();
    let mut devices = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = name.to_ascii_lowercase();
        if lower == "cpu" {
            devices.push(Device::flex());
            continue;
        }
        let index: usize = lower
            .strip_prefix("cuda:")
            .unwrap_or(&lower)
            .parse()
            .map_err(|_| DeviceError::Unknown(name.to_string()))?;
        if seen.contains(&index) {
            return Err(DeviceError::Repeated(name.to_string()));
        }
        seen.push(index);
        devices.push(gpu(index, name)?);
    }
    if devices.is_empty() {
        return Err(DeviceError::Empty);
    }
    Ok(devices)
}

#[cfg(feature = "cuda")]
fn gpu(index: usize, _name: &str) -> Result<Device, DeviceError> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn gpu(_index: usize, name: &str) -> Result<Device, DeviceError> {
    Err(DeviceError::NoGpuBuild(name.to_string()))
}

/// Whether `device` (with or without autodiff) is Burn's `flex` CPU backend, where cucn's own
/// CPU kernels ([`crate::model::fused_adam`], [`crate::model::cpu_batch_norm`],
/// [`crate::model::cpu_conv`], [`crate::model::cpu_max_pool`]) replace Burn's.
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_bad_names_are_errors() {
        assert_eq!(parse_devices("cpu").unwrap().len(), 1);
        assert_eq!(parse_devices(" cpu, CPU ").unwrap().len(), 2);
        assert!(matches!(parse_devices(""), Err(DeviceError::Empty)));
        assert!(matches!(parse_devices("tpu"), Err(DeviceError::Unknown(_))));
        assert!(matches!(
            parse_devices("cuda:x"),
            Err(DeviceError::Unknown(_))
        ));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn gpus_need_a_gpu_build() {
        let err = parse_devices("cuda:0,1").unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn a_gpu_named_twice_is_refused() {
        assert!(matches!(
            parse_devices("0,cuda:0"),
            Err(DeviceError::Repeated(_))
        ));
    }
}
