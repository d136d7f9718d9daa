//! Where fine-tuning computes (`--device cpu|cuda|auto`): burn 0.22's pure-Rust CPU backend
//! (flex), multi-threaded with the trainer's rayon pool, or, when built with the `cuda`
//! feature, burn 0.21's CUDA backend on GPU 0.
//!
//! # Why two burn versions
//!
//! burn 0.22's CUDA backend (burn-cuda 0.22, cubecl-cuda 0.11) cannot be built offline:
//! cubecl-cuda 0.11 depends on cubecl-llvm unconditionally (its PTX path, no feature turns it
//! off), whose build script gets a custom LLVM 23 bundle through `tracel-llvm-bundler`, which
//! downloads it from GitHub. burn 0.21's CUDA backend (cubecl-cuda 0.10, cudarc 0.19 with
//! dynamic loading) has no LLVM step: it compiles kernels at run time with NVRTC and loads the
//! driver and NVRTC libraries when first used, so it compiles anywhere, GPU or not.
//!
//! The choice was between pinning burn 0.21 for every backend and linking 0.21 next to 0.22
//! under the `cuda` feature only. Pinning would change the CPU path the trainer's results come
//! from: burn-flex changed between the two (convolution bias handling, non-finite padding,
//! kernels), so CPU models would no longer be the bit-identical ones of 0.22, and 0.21's
//! tensor API (`Tensor<B, D>`) differs from 0.22's (`Tensor<D>`, devices chosen at run
//! time). So the CPU keeps burn 0.22 exactly as before, and `--features cuda` adds burn 0.21
//! under the name `burn-cuda-backend` for the GPU. The network is not written twice: it is
//! generic over [`super::engine::Engine`], the dozen tensor operations it uses, implemented
//! once per burn version; the CPU implementation calls what the network called before, in
//! the same order, so CPU results are unchanged (Lite0 fine-tuned `top:2`, and `all` with
//! augmentation, gave the same model tensors bit for bit before and after the split). CI
//! compiles the feature without a GPU (`cargo clippy -p ics-train --features cuda` in
//! scripts/test.sh); `--features cuda-on-cpu` adds burn 0.21's CPU backend, on which a test
//! holds the burn 0.21 engine to finite differences and to burn 0.22
//! (`cargo test -p ics-train --features cuda-on-cpu --lib burn21`); the GPU itself is
//! checked by `tests/gpu/check_cuda.sh`.
//!
//! # What the GPU needs at run time
//!
//! The NVIDIA driver (`libcuda.so.1`), NVRTC (`libnvrtc.so.13`, PyPI `nvidia-cuda-nvrtc`) on
//! the library path, and the CUDA headers NVRTC compiles the kernels against
//! (`cuda_runtime.h`, PyPI `nvidia-cuda-runtime`): `CUDA_PATH` names the folder whose
//! `include/` holds them (else `/usr/local/cuda`, `/opt/cuda`, or `/usr` with `nvcc`).
//! [`resolve`] checks each before burn's runtime would panic on its absence, and `--device
//! cuda` fails naming what is missing; `auto` then trains on the CPU with a one-line note.

use anyhow::{bail, Result};
use burn::tensor::Device;
use ndarray::{Array2, ArrayView2};

use super::engine::Engine;
use super::network::{NetworkTensors, Start};
use crate::backbone::folded::NetworkWeights;
pub use crate::onnx::runtime::DeviceChoice;

/// The burn 0.22 CPU device of the forward and backward passes, with autodiff.
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// The same device without autodiff (evaluation forward passes: nothing is recorded).
pub fn inference_device() -> Device {
    Device::flex()
}

/// The burn version of the CPU backend (Cargo.toml pins it).
pub const BURN_VERSION: &str = "0.22.1";

/// The burn version of the CUDA backend (`--features cuda`).
pub const BURN_CUDA_VERSION: &str = "0.21.0";

/// Whether this build has the CUDA backend (`--features cuda`).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

#[cfg(feature = "cuda")]
type CudaBackend = burn_cuda_backend::backend::Autodiff<burn_cuda_backend::backend::Cuda<f32, i32>>;

/// The engine of `--device cuda`: burn 0.21, CUDA, with autodiff.
#[cfg(feature = "cuda")]
pub type CudaEngine = super::engine::Burn21<CudaBackend>;

/// Where the trained network runs.
#[derive(Clone, Default)]
pub enum Compute {
    /// burn 0.22 flex.
    #[default]
    Cpu,
    /// burn 0.21 CUDA on GPU 0.
    #[cfg(feature = "cuda")]
    Cuda(CudaEngine),
}

/// A forward pass with gradients tracked, waiting for its backward pass.
pub struct PendingPass(PassOn);

enum PassOn {
    Cpu(Pass<Device>),
    #[cfg(feature = "cuda")]
    Cuda(Pass<CudaEngine>),
}

struct Pass<G: Engine> {
    tensors: NetworkTensors<G>,
    features: G::T2,
}

/// Runs `rows` (n x `shape` values) through the part of `w` from `start`, tracked.
fn forward_on<G: Engine>(
    device: &G,
    w: &NetworkWeights,
    start: Start,
    rows: Vec<f32>,
    shape: [usize; 4],
) -> (Vec<f32>, Pass<G>) {
    let x = device.tensor4::<f32>(rows, shape);
    let tensors = NetworkTensors::upload_f32(w, start, device, true);
    let features = tensors.forward(x);
    let host = G::values2::<f32>(features.clone());
    (host, Pass { tensors, features })
}

/// The gradients of `Σ features ⊙ d` for every trained convolution.
fn backward_on<G: Engine>(
    device: &G,
    pass: Pass<G>,
    d: Vec<f32>,
) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let shape = G::dims2(&pass.features);
    let g = device.tensor2::<f32>(d, shape);
    // The vector-Jacobian product: ∂(Σ f ⊙ g)/∂θ = (∂f/∂θ)ᵀ g.
    let grads = G::vjp(pass.features, g);
    pass.tensors.gradients::<f32>(&grads)
}

/// Features of `rows` (each `shape` values) in chunks of `chunk`, nothing tracked.
fn features_on<G: Engine>(
    device: &G,
    w: &NetworkWeights,
    start: Start,
    rows: ArrayView2<f32>,
    shape: [usize; 3],
    chunk: usize,
) -> Array2<f32> {
    let tensors = NetworkTensors::upload_f32(w, start, device, false);
    let d = w.arch.head_channels;
    let mut out = Array2::<f32>::zeros((rows.nrows(), d));
    let mut first = 0;
    while first < rows.nrows() {
        let end = (first + chunk).min(rows.nrows());
        let values: Vec<f32> = rows
            .slice(ndarray::s![first..end, ..])
            .iter()
            .copied()
            .collect();
        let [c, h, w] = shape;
        let x = device.tensor4::<f32>(values, [end - first, c, h, w]);
        let host = G::values2::<f32>(tensors.forward(x));
        out.slice_mut(ndarray::s![first..end, ..])
            .assign(&ArrayView2::from_shape((end - first, d), &host).expect("n x d"));
        first = end;
    }
    out
}

impl Compute {
    /// Features (n x head channels) of `rows` (n x C x H x W values, `shape`) through the part
    /// of `w` from `start`, with the pass kept for [`Compute::backward`].
    pub fn forward(
        &self,
        w: &NetworkWeights,
        start: Start,
        rows: Vec<f32>,
        shape: [usize; 4],
    ) -> (Vec<f32>, PendingPass) {
        match self {
            Compute::Cpu => {
                let (f, p) = forward_on(&training_device(), w, start, rows, shape);
                (f, PendingPass(PassOn::Cpu(p)))
            }
            #[cfg(feature = "cuda")]
            Compute::Cuda(g) => {
                let (f, p) = forward_on(g, w, start, rows, shape);
                (f, PendingPass(PassOn::Cuda(p)))
            }
        }
    }

    /// The gradients (weight, bias per trained convolution, network order) of `Σ f ⊙ d`,
    /// `d` the loss's gradient with respect to the pass's features (row-major).
    pub fn backward(&self, pass: PendingPass, d: Vec<f32>) -> Vec<(String, Vec<f32>, Vec<f32>)> {
        match (self, pass.0) {
            (Compute::Cpu, PassOn::Cpu(p)) => backward_on(&training_device(), p, d),
            #[cfg(feature = "cuda")]
            (Compute::Cuda(g), PassOn::Cuda(p)) => backward_on(g, p, d),
            #[cfg(feature = "cuda")]
            _ => unreachable!("a pass is taken back by the device that ran it"),
        }
    }

    /// Features of `rows` (each C x H x W = `shape` values) under `w`, in chunks of `chunk`
    /// rows, without gradients.
    pub fn features(
        &self,
        w: &NetworkWeights,
        start: Start,
        rows: ArrayView2<f32>,
        shape: [usize; 3],
        chunk: usize,
    ) -> Array2<f32> {
        match self {
            Compute::Cpu => features_on(&inference_device(), w, start, rows, shape, chunk),
            #[cfg(feature = "cuda")]
            Compute::Cuda(g) => features_on(g, w, start, rows, shape, chunk),
        }
    }

    /// Whether this is the GPU.
    pub fn is_cuda(&self) -> bool {
        !matches!(self, Compute::Cpu)
    }

    /// A short description for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Compute::Cpu => describe(),
            #[cfg(feature = "cuda")]
            Compute::Cuda(_) => format!("burn {BURN_CUDA_VERSION} cuda (GPU 0)"),
        }
    }
}

/// The CPU backend, for logs and reports.
pub fn describe() -> String {
    format!(
        "burn {} flex (CPU, {} threads)",
        BURN_VERSION,
        rayon::current_num_threads()
    )
}

/// Where `--device` trains, and for `auto` on the CPU a one-line note saying why not the GPU.
/// `cuda` fails naming what is missing: the `cuda` feature in this build, a visible GPU, the
/// driver, NVRTC or the CUDA headers (`CUDA_PATH`), or a device that does not start.
pub fn resolve(choice: DeviceChoice) -> Result<(Compute, Option<String>)> {
    match choice {
        DeviceChoice::Cpu => Ok((Compute::Cpu, None)),
        DeviceChoice::Cuda => match cuda() {
            Ok(c) => Ok((c, None)),
            Err(why) => bail!("--device cuda: {why}"),
        },
        DeviceChoice::Auto => match cuda() {
            Ok(c) => Ok((c, None)),
            Err(why) => Ok((
                Compute::Cpu,
                Some(format!("--device auto: training on the CPU, {why}")),
            )),
        },
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Compute, String> {
    Err(
        "this ics-train was built without the `cuda` feature (build it with `cargo build \
         --release -p ics-train --features cuda`)"
            .into(),
    )
}

/// The GPU when it works (checked once per process: the answer is kept).
#[cfg(feature = "cuda")]
fn cuda() -> Result<Compute, String> {
    static PROBED: std::sync::OnceLock<Result<Compute, String>> = std::sync::OnceLock::new();
    PROBED.get_or_init(probe_cuda).clone()
}

#[cfg(feature = "cuda")]
fn probe_cuda() -> Result<Compute, String> {
    use burn_cuda_backend::backend::cuda::CudaDevice;

    let (gpu, why) = ics_encoder::runtime::gpu_present();
    if !gpu {
        return Err(why);
    }
    cuda_libraries()?;
    cuda_headers()?;
    let engine = super::engine::Burn21::<CudaBackend>(CudaDevice::new(0));
    // The first kernel compiles through NVRTC and runs: burn panics where it fails.
    let probe = engine.clone();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let x = probe.tensor2::<f32>(vec![1.0, 2.0, 3.0, 4.0], [2, 2]);
        let y = <CudaEngine as Engine>::values2::<f32>(x.clone() + x);
        y == [2.0, 4.0, 6.0, 8.0]
    }));
    match ran {
        Ok(true) => Ok(Compute::Cuda(engine)),
        Ok(false) => Err("a test kernel on GPU 0 gave wrong values".into()),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("GPU 0 did not run a test kernel: {msg}"))
        }
    }
}

/// The driver and NVRTC are where the dynamic loader finds libraries (burn's runtime panics
/// where they are not): the folders of `LD_LIBRARY_PATH`, the loader's cache (`ldconfig -p`)
/// and the default folders. Looked for, not loaded: the trainer has no unsafe code.
#[cfg(feature = "cuda")]
fn cuda_libraries() -> Result<(), String> {
    use std::path::PathBuf;
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let cache = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .or_else(|_| {
            std::process::Command::new("/sbin/ldconfig")
                .arg("-p")
                .output()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for d in [
        "/lib",
        "/usr/lib",
        "/lib64",
        "/usr/lib64",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
    ] {
        dirs.push(d.into());
    }
    let found = |names: &[&str]| {
        names.iter().any(|n| {
            dirs.iter().any(|d| d.join(n).exists())
                || cache
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{n} ")))
        })
    };
    if !found(&["libcuda.so.1", "libcuda.so"]) {
        return Err(
            "the NVIDIA driver library libcuda.so.1 is not where the loader looks \
                    (LD_LIBRARY_PATH, ldconfig): install the driver"
                .into(),
        );
    }
    if !found(&["libnvrtc.so.13", "libnvrtc.so"]) {
        return Err(
            "NVRTC (libnvrtc.so.13) is not where the loader looks: `pip install \
                    nvidia-cuda-nvrtc` and put its lib folder in LD_LIBRARY_PATH"
                .into(),
        );
    }
    Ok(())
}

/// The CUDA headers NVRTC compiles against: where cubecl looks for them.
#[cfg(feature = "cuda")]
fn cuda_headers() -> Result<(), String> {
    let hint = "set CUDA_PATH to the folder whose include/ holds cuda_runtime.h (`pip install \
                nvidia-cuda-runtime`: the package's nvidia/cu13 folder)";
    // cubecl-cuda's search: CUDA_PATH, else /usr/local/cuda, /opt/cuda, /usr with nvcc.
    let root = match std::env::var_os("CUDA_PATH") {
        Some(p) => std::path::PathBuf::from(p),
        None => match ["/usr/local/cuda", "/opt/cuda"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
        {
            Some(p) => p,
            None if std::path::Path::new("/usr/bin/nvcc").exists() => "/usr".into(),
            None => {
                return Err(format!(
                    "the CUDA headers are not found (CUDA_PATH is not set): {hint}"
                ))
            }
        },
    };
    let header = root.join("include").join("cuda_runtime.h");
    if header.is_file() {
        Ok(())
    } else {
        Err(format!(
            "the CUDA headers are not found: {} does not exist; {hint}",
            header.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_cpu() {
        let (c, note) = resolve(DeviceChoice::Cpu).unwrap();
        assert!(!c.is_cuda() && note.is_none());
        assert!(c.describe().starts_with("burn 0.22.1 flex (CPU"));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_cuda_fails_and_auto_falls_back() {
        let e = resolve(DeviceChoice::Cuda).err().unwrap().to_string();
        assert!(
            e.starts_with("--device cuda: this ics-train was built without the `cuda` feature")
                && e.contains("--features cuda"),
            "{e}"
        );
        let (c, note) = resolve(DeviceChoice::Auto).unwrap();
        assert!(!c.is_cuda());
        let note = note.unwrap();
        assert!(
            note.starts_with(
                "--device auto: training on the CPU, this ics-train was built \
                              without"
            ) && !note.contains('\n'),
            "{note}"
        );
    }

    /// With the feature on a machine without a GPU (CI, this one), `cuda` names what is missing.
    #[cfg(feature = "cuda")]
    #[test]
    fn without_a_gpu_cuda_says_so() {
        if ics_encoder::runtime::gpu_present().0 {
            return;
        }
        let e = resolve(DeviceChoice::Cuda).err().unwrap().to_string();
        assert!(
            e.starts_with("--device cuda: no NVIDIA GPU is visible"),
            "{e}"
        );
        let (c, note) = resolve(DeviceChoice::Auto).unwrap();
        assert!(!c.is_cuda() && note.unwrap().contains("no NVIDIA GPU is visible"));
    }
}
