//! Where fine-tuning computes: burn's pure-Rust CPU backend (flex), multi-threaded with the
//! trainer's rayon pool.
//!
//! CUDA: burn's CUDA backend (`cubecl-cuda`) is not compiled into the trainer. It builds
//! without a CUDA toolkit, but running it needs the CUDA driver and NVRTC, which the
//! machines this project builds and tests on do not have, so it could not be tested here;
//! the CPU build never needs it (see the README, "Fine-tuning").

use burn::tensor::Device;

/// The device of the forward and backward passes, with autodiff.
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// The same device without autodiff (evaluation forward passes: nothing is recorded).
pub fn inference_device() -> Device {
    Device::flex()
}

/// A short description for logs and reports.
pub fn describe() -> String {
    format!(
        "burn {} flex (CPU, {} threads)",
        BURN_VERSION,
        rayon::current_num_threads()
    )
}

/// The burn version the trainer is built with (Cargo.toml pins it).
pub const BURN_VERSION: &str = "0.22.1";
