//! The tensor operations the trained network needs, as a trait, so that [`super::network`] is
//! written once for both burn versions the trainer links (see [`super::device`]): burn 0.22
//! on the CPU ([`burn::tensor::Device`], the flex backend) and, with the `cuda` feature, burn
//! 0.21 on an NVIDIA GPU ([`Burn21`]).
//!
//! The operations are exactly those [`super::network::NetworkTensors`] uses, one for one: the
//! CPU implementation calls the burn 0.22 methods the network called before this trait
//! existed, in the same order, so CPU results are bit-identical to the trainer's before it.

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Gradients, Tensor, TensorCreationOptions, TensorData};

/// The element types tensors are made of: `f32` (training) and `f64` (the finite-difference
/// check), elements of every linked burn.
#[cfg(not(feature = "cuda"))]
pub trait Real: burn::tensor::Element + Copy + Send + Sync + 'static {
    const ZERO: Self;
}

/// The element types tensors are made of: `f32` (training) and `f64` (the finite-difference
/// check), elements of every linked burn.
#[cfg(feature = "cuda")]
pub trait Real:
    burn::tensor::Element + burn_cuda_backend::tensor::Element + Copy + Send + Sync + 'static
{
    const ZERO: Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
}

impl Real for f64 {
    const ZERO: Self = 0.0;
}

/// One device of one burn version: tensors of rank 1, 2 and 4, the network's operations on
/// them, and reverse-mode gradients. Tensors keep the element type they are made with.
pub trait Engine: Clone + 'static {
    type T1: Clone;
    type T2: Clone;
    type T4: Clone;
    type Grads;

    fn tensor1<E: Real>(&self, values: Vec<E>, len: usize) -> Self::T1;
    fn tensor2<E: Real>(&self, values: Vec<E>, shape: [usize; 2]) -> Self::T2;
    fn tensor4<E: Real>(&self, values: Vec<E>, shape: [usize; 4]) -> Self::T4;
    /// Marks a leaf for gradients (the device must have autodiff).
    fn track1(t: Self::T1) -> Self::T1;
    fn track4(t: Self::T4) -> Self::T4;
    fn dims2(t: &Self::T2) -> [usize; 2];
    fn dims4(t: &Self::T4) -> [usize; 4];
    /// `conv(x, weight) + bias` with `pad` zeros on every side.
    fn conv2d(
        x: Self::T4,
        weight: &Self::T4,
        bias: &Self::T1,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Self::T4;
    /// Zero padding (left, right, top, bottom).
    fn pad(x: Self::T4, pads: (usize, usize, usize, usize)) -> Self::T4;
    /// `clamp(x, 0, 6)`.
    fn relu6(x: Self::T4) -> Self::T4;
    fn add(a: Self::T4, b: Self::T4) -> Self::T4;
    /// Global average pooling: N x C x H x W to N x C.
    fn pool(x: Self::T4) -> Self::T2;
    /// The gradients of `Σ f ⊙ g` (a vector-Jacobian product with `g`).
    fn vjp(f: Self::T2, g: Self::T2) -> Self::Grads;
    fn grad1<E: Real>(t: &Self::T1, grads: &Self::Grads) -> Option<Vec<E>>;
    fn grad4<E: Real>(t: &Self::T4, grads: &Self::Grads) -> Option<Vec<E>>;
    /// The values, converted to `E`.
    fn values2<E: Real>(t: Self::T2) -> Vec<E>;
}

/// burn 0.22 (the CPU: `Device::flex()`, with `.autodiff()` for training).
impl Engine for Device {
    type T1 = Tensor<1>;
    type T2 = Tensor<2>;
    type T4 = Tensor<4>;
    type Grads = Gradients;

    fn tensor1<E: Real>(&self, values: Vec<E>, len: usize) -> Tensor<1> {
        tensor::<E, 1>(values, [len], self)
    }
    fn tensor2<E: Real>(&self, values: Vec<E>, shape: [usize; 2]) -> Tensor<2> {
        tensor::<E, 2>(values, shape, self)
    }
    fn tensor4<E: Real>(&self, values: Vec<E>, shape: [usize; 4]) -> Tensor<4> {
        tensor::<E, 4>(values, shape, self)
    }
    fn track1(t: Tensor<1>) -> Tensor<1> {
        t.require_grad()
    }
    fn track4(t: Tensor<4>) -> Tensor<4> {
        t.require_grad()
    }
    fn dims2(t: &Tensor<2>) -> [usize; 2] {
        t.dims()
    }
    fn dims4(t: &Tensor<4>) -> [usize; 4] {
        t.dims()
    }
    fn conv2d(
        x: Tensor<4>,
        weight: &Tensor<4>,
        bias: &Tensor<1>,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Tensor<4> {
        conv2d(
            x,
            weight.clone(),
            Some(bias.clone()),
            ConvOptions::new([stride; 2], [pad; 2], [1, 1], groups),
        )
    }
    fn pad(x: Tensor<4>, pads: (usize, usize, usize, usize)) -> Tensor<4> {
        x.pad(pads, PadMode::Constant(0.0))
    }
    fn relu6(x: Tensor<4>) -> Tensor<4> {
        x.clamp(0.0, 6.0)
    }
    fn add(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        a + b
    }
    fn pool(x: Tensor<4>) -> Tensor<2> {
        let [n, c, _, _] = x.dims();
        x.mean_dims(&[2, 3]).reshape([n, c])
    }
    fn vjp(f: Tensor<2>, g: Tensor<2>) -> Gradients {
        (f * g).sum().backward()
    }
    fn grad1<E: Real>(t: &Tensor<1>, grads: &Gradients) -> Option<Vec<E>> {
        t.grad(grads).map(|g| to_vec(g.into_data()))
    }
    fn grad4<E: Real>(t: &Tensor<4>, grads: &Gradients) -> Option<Vec<E>> {
        t.grad(grads).map(|g| to_vec(g.into_data()))
    }
    fn values2<E: Real>(t: Tensor<2>) -> Vec<E> {
        to_vec(t.into_data())
    }
}

/// A burn 0.22 tensor of `T` values on `device`, kept in `T` (burn would otherwise convert to
/// the device's default float type, `f32`).
pub fn tensor<T: Real, const D: usize>(
    values: Vec<T>,
    shape: impl Into<burn::tensor::Shape>,
    device: &Device,
) -> Tensor<D> {
    Tensor::<D>::from_data(
        TensorData::new(values, shape),
        TensorCreationOptions::new(device.clone())
            .with_dtype(<T as burn::tensor::Element>::dtype()),
    )
}

/// A burn 0.22 tensor's values as `T` (converted when the tensor holds another float type).
pub fn to_vec<T: Real>(data: TensorData) -> Vec<T> {
    data.convert::<T>()
        .try_into_vec::<T>()
        .expect("converted to the element type")
}

#[cfg(feature = "cuda")]
pub use burn21::Burn21;

#[cfg(feature = "cuda")]
mod burn21 {
    use burn_cuda_backend::tensor::backend::AutodiffBackend;
    use burn_cuda_backend::tensor::module::conv2d;
    use burn_cuda_backend::tensor::ops::ConvOptions;
    use burn_cuda_backend::tensor::{Tensor, TensorCreationOptions, TensorData};

    use super::{Engine, Real};

    /// A device of burn 0.21 backend `B` (with autodiff): the CUDA backend of `--device cuda`.
    /// Untracked tensors record nothing, so evaluation passes run on the same backend.
    pub struct Burn21<B: AutodiffBackend>(pub B::Device);

    impl<B: AutodiffBackend> Clone for Burn21<B> {
        fn clone(&self) -> Self {
            Burn21(self.0.clone())
        }
    }

    fn make<B: AutodiffBackend, E: Real, const D: usize>(
        values: Vec<E>,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        Tensor::<B, D>::from_data(
            TensorData::new(values, shape),
            TensorCreationOptions::new(device.clone())
                .with_dtype(<E as burn_cuda_backend::tensor::Element>::dtype()),
        )
    }

    fn values<E: Real>(data: TensorData) -> Vec<E> {
        data.convert::<E>()
            .into_vec::<E>()
            .expect("converted to the element type")
    }

    impl<B: AutodiffBackend> Engine for Burn21<B> {
        type T1 = Tensor<B, 1>;
        type T2 = Tensor<B, 2>;
        type T4 = Tensor<B, 4>;
        type Grads = B::Gradients;

        fn tensor1<E: Real>(&self, v: Vec<E>, len: usize) -> Tensor<B, 1> {
            make::<B, E, 1>(v, [len], &self.0)
        }
        fn tensor2<E: Real>(&self, v: Vec<E>, shape: [usize; 2]) -> Tensor<B, 2> {
            make::<B, E, 2>(v, shape, &self.0)
        }
        fn tensor4<E: Real>(&self, v: Vec<E>, shape: [usize; 4]) -> Tensor<B, 4> {
            make::<B, E, 4>(v, shape, &self.0)
        }
        fn track1(t: Tensor<B, 1>) -> Tensor<B, 1> {
            t.require_grad()
        }
        fn track4(t: Tensor<B, 4>) -> Tensor<B, 4> {
            t.require_grad()
        }
        fn dims2(t: &Tensor<B, 2>) -> [usize; 2] {
            t.dims()
        }
        fn dims4(t: &Tensor<B, 4>) -> [usize; 4] {
            t.dims()
        }
        fn conv2d(
            x: Tensor<B, 4>,
            weight: &Tensor<B, 4>,
            bias: &Tensor<B, 1>,
            stride: usize,
            pad: usize,
            groups: usize,
        ) -> Tensor<B, 4> {
            conv2d(
                x,
                weight.clone(),
                Some(bias.clone()),
                ConvOptions::new([stride; 2], [pad; 2], [1, 1], groups),
            )
        }
        /// burn 0.21's own `pad` makes its zeros in the default float type, which fails for
        /// `f64` tensors (the gradient check): the same zeros and assignment, in `x`'s type.
        fn pad(x: Tensor<B, 4>, pads: (usize, usize, usize, usize)) -> Tensor<B, 4> {
            let (left, right, top, bottom) = pads;
            let [n, c, h, w] = x.dims();
            let zeros = Tensor::<B, 4>::zeros(
                [n, c, h + top + bottom, w + left + right],
                TensorCreationOptions::new(x.device()).with_dtype(x.dtype()),
            );
            zeros.slice_assign([0..n, 0..c, top..top + h, left..left + w], x)
        }
        fn relu6(x: Tensor<B, 4>) -> Tensor<B, 4> {
            x.clamp(0.0, 6.0)
        }
        fn add(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
            a + b
        }
        fn pool(x: Tensor<B, 4>) -> Tensor<B, 2> {
            let [n, c, _, _] = x.dims();
            x.mean_dims(&[2, 3]).reshape([n, c])
        }
        fn vjp(f: Tensor<B, 2>, g: Tensor<B, 2>) -> B::Gradients {
            (f * g).sum().backward()
        }
        fn grad1<E: Real>(t: &Tensor<B, 1>, grads: &B::Gradients) -> Option<Vec<E>> {
            t.grad(grads).map(|g| values(g.into_data()))
        }
        fn grad4<E: Real>(t: &Tensor<B, 4>, grads: &B::Gradients) -> Option<Vec<E>> {
            t.grad(grads).map(|g| values(g.into_data()))
        }
        fn values2<E: Real>(t: Tensor<B, 2>) -> Vec<E> {
            values(t.into_data())
        }
    }
}
