//! 2-D convolutions and transposed convolutions: [`conv2d`] and [`conv_transpose2d`], drop-ins
//! for `Conv2d::forward` and `ConvTranspose2d::forward` with genlab's kernels on flex.
//!
//! burn-flex 0.22 writes only the forward passes of its convolutions. Their gradients fall back
//! to burn's generic formulas, and the weight gradient among them is a convolution over
//! batch/channel-swapped tensors whose "kernel" is the whole output map: for 1x1 layers such as
//! FSRCNN's it is far slower than the forward pass (figures: BENCHMARKS.md, "Speed: genlab's own
//! convolution kernels on the CPU", "Step 1: gradients").
//!
//! [`ConvBackend`] registers genlab's own forward passes on `Flex` and its own autodiff step on
//! `Autodiff<Flex>` (private children: `autodiff`, the steps on the tape; `flex`, the kernel
//! glue):
//!
//! - forward: `genlab_kernels::forward` (im2col and one GEMM per image; a transposed
//!   convolution's forward pass is a convolution's input gradient);
//! - weight gradient: per image, `dW += dY_n · im2col(X_n)ᵀ`, one GEMM (the `gemm` crate burn-flex
//!   uses) per image, images split across rayon threads, each with its own accumulator;
//! - input gradient: per image, `col = Wᵀ · dY_n`, then col2im (a transposed convolution is the
//!   input gradient of a convolution, and its own input gradient is a forward convolution);
//!   with 8 or more input channels both gradients go through channels-last column matrices
//!   (`genlab_kernels`' crate documentation says how and why);
//! - bias gradient: a plain sum over images and positions.
//!
//! Anything else (other dtypes, grouped convolutions, "same" padding, GPU backends) takes burn's
//! own path. Tests compare every gradient with burn's own and (in genlab-kernels) with finite
//! differences.

mod autodiff;
mod flex;

pub use flex::{conv_transpose2d_forward, conv2d_forward};

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use burn::backend::Autodiff;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ConvTransposeOptions};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;

/// Convolutions whose forward pass and autodiff step a backend may provide itself. The default
/// bodies are burn's own operations (and their autodiff), which every backend has.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait ConvBackend: Backend {
    /// `conv2d` with a bias, as `burn::tensor::module::conv2d`. (The extension macro takes no
    /// `Option` of a tensor, hence one method with a bias and one without.)
    fn conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// `conv2d` without a bias.
    fn conv2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// `conv_transpose2d` with a bias, as `burn::tensor::module::conv_transpose2d`.
    fn conv_transpose2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, Some(bias), options)
    }

    /// `conv_transpose2d` without a bias.
    fn conv_transpose2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, None, options)
    }
}

/// Inference on flex runs genlab's forward kernels too (they are what training runs).
impl ConvBackend for Flex {
    fn conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d_forward(x, weight, Some(bias), options)
    }

    fn conv2d_nobias(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv2d_forward(x, weight, None, options)
    }

    fn conv_transpose2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        conv_transpose2d_forward(x, weight, Some(bias), options)
    }

    fn conv_transpose2d_nobias(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        conv_transpose2d_forward(x, weight, None, options)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ConvBackend for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> ConvBackend for Autodiff<burn::backend::Cube, C> {}

/// `layer.forward(x)`, with the fast gradients where the backend has them.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // "Same" padding's arithmetic is burn's own; keep its path.
        PaddingConfig2d::Same => return layer.forward(x),
    };
    let options =
        ConvOptions::new_with_padding(layer.stride, padding, layer.dilation, layer.groups);
    let (x, w) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(b) => <Dispatch as ConvBackend>::conv2d_bias(x, w, b.val().into_dispatch(), options),
        None => <Dispatch as ConvBackend>::conv2d_nobias(x, w, options),
    };
    Tensor::from_dispatch(out)
}

/// `layer.forward(x)`, with the fast gradients where the backend has them.
pub fn conv_transpose2d(layer: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let options = ConvTransposeOptions::new(
        layer.stride,
        layer.padding,
        layer.padding_out,
        layer.dilation,
        layer.groups,
    );
    let (x, w) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(b) => {
            <Dispatch as ConvBackend>::conv_transpose2d_bias(x, w, b.val().into_dispatch(), options)
        }
        None => <Dispatch as ConvBackend>::conv_transpose2d_nobias(x, w, options),
    };
    Tensor::from_dispatch(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Device, Distribution, TensorData, Tolerance};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Gradients of sum(layer(x) * r) for x, weight and bias, through `f`.
    fn grads4(
        x: Tensor<4>,
        r: &Tensor<4>,
        weight: &burn::module::Param<Tensor<4>>,
        bias: Option<&burn::module::Param<Tensor<1>>>,
        y: Tensor<4>,
    ) -> Vec<TensorData> {
        let g = (y * r.clone()).sum().backward();
        let mut out = vec![
            x.grad(&g).expect("x grad").into_data(),
            weight.val().grad(&g).expect("w grad").into_data(),
        ];
        if let Some(b) = bias {
            out.push(b.val().grad(&g).expect("b grad").into_data());
        }
        out
    }

    /// Every gradient of genlab's conv equals burn's generic one, across strides, paddings
    /// (asymmetric too), dilations, kernel sizes including 1x1, and with and without bias.
    #[test]
    fn conv2d_gradients_match_burns() {
        let d = device();
        let cases = [
            // (cin, cout, k, stride, dilation, padding (t, l, b, r), h, w, bias)
            (3, 4, 3, 1, 1, (1, 1, 1, 1), 7, 6, true),
            (2, 5, 4, 2, 1, (1, 1, 1, 1), 8, 9, true),
            (4, 3, 1, 1, 1, (0, 0, 0, 0), 5, 5, true),
            (4, 3, 1, 2, 1, (0, 0, 0, 0), 5, 6, false),
            (3, 2, 5, 1, 1, (2, 2, 2, 2), 6, 6, true),
            (2, 3, 3, 2, 2, (2, 1, 0, 1), 9, 8, false),
            (1, 2, 3, 3, 1, (0, 0, 0, 0), 10, 7, true),
        ];
        for (cin, cout, k, s, dil, (t, l, b, r), h, w, bias) in cases {
            let layer = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_dilation([dil, dil])
                .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
                .with_bias(bias)
                .init(&d);
            let x = Tensor::<4>::random([3, cin, h, w], Distribution::Normal(0.0, 1.0), &d);
            let reference = layer.forward(x.clone().require_grad());
            let rnd = Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &d);
            let xa = x.clone().require_grad();
            let ya = conv2d(&layer, xa.clone());
            ya.clone()
                .into_data()
                .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::default());
            let ours = grads4(xa, &rnd, &layer.weight, layer.bias.as_ref(), ya);
            let xb = x.require_grad();
            let yb = layer.forward(xb.clone());
            let theirs = grads4(xb, &rnd, &layer.weight, layer.bias.as_ref(), yb);
            for (a, b) in ours.iter().zip(&theirs) {
                a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-4, 1e-4));
            }
        }
    }

    #[test]
    fn conv_transpose2d_gradients_match_burns() {
        let d = device();
        let cases = [
            // (cin, cout, k, stride, padding, padding_out, dilation, h, w, bias)
            (3, 2, 4, 2, 1, 0, 1, 5, 6, true),
            (2, 1, 9, 2, 4, 1, 1, 6, 5, true),
            (4, 3, 3, 1, 1, 0, 1, 4, 4, false),
            (2, 3, 3, 3, 0, 2, 2, 3, 5, true),
            (5, 2, 1, 1, 0, 0, 1, 4, 3, false),
        ];
        for (cin, cout, k, s, p, po, dil, h, w, bias) in cases {
            let layer = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_padding_out([po, po])
                .with_dilation([dil, dil])
                .with_bias(bias)
                .init(&d);
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &d);
            let reference = layer.forward(x.clone());
            let rnd = Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &d);
            let xa = x.clone().require_grad();
            let ya = conv_transpose2d(&layer, xa.clone());
            ya.clone()
                .into_data()
                .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::default());
            let ours = grads4(xa, &rnd, &layer.weight, layer.bias.as_ref(), ya);
            let xb = x.require_grad();
            let yb = layer.forward(xb.clone());
            let theirs = grads4(xb, &rnd, &layer.weight, layer.bias.as_ref(), yb);
            for (a, b) in ours.iter().zip(&theirs) {
                a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-4, 1e-4));
            }
        }
    }

    /// Without autodiff (inference: `genlab upscale`, sampling), the forward kernels give burn's
    /// outputs too.
    #[test]
    fn inference_forwards_match_burns() {
        let d = Device::flex();
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1))
            .init(&d);
        let x = Tensor::<4>::random([2, 3, 9, 8], Distribution::Normal(0.0, 1.0), &d);
        conv2d(&conv, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&conv.forward(x).into_data(), Tolerance::default());
        let deconv = ConvTranspose2dConfig::new([4, 2], [9, 9])
            .with_stride([3, 3])
            .with_padding([4, 4])
            .with_padding_out([2, 2])
            .init(&d);
        let x = Tensor::<4>::random([2, 4, 5, 6], Distribution::Normal(0.0, 1.0), &d);
        conv_transpose2d(&deconv, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&deconv.forward(x).into_data(), Tolerance::default());
    }
}
