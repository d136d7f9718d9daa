//! Where fine-tuning computes: burn's pure-Rust CPU backend (flex), multi-threaded with the
//! trainer's rayon pool.
//!
//! No CUDA: burn 0.22's CUDA backend (cubecl-cuda 0.11) cannot be built offline, because its
//! build dependency `tracel-llvm-bundler` downloads an LLVM bundle from its build script; a
//! feature that cannot be built or tested here is not offered. The exported model encodes on
//! CUDA through ONNX Runtime all the same.

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
