//! The convolutions on flex tensors: genlab's kernels for f32 and one group, flex's own ops
//! (burn's formulas) otherwise. Geometries, forward passes and gradients.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
use burn::tensor::{Shape, TensorData};
use genlab_kernels::{self as kernels, Geom};

use crate::nn::ops::{contiguous, dims4, is_f32, tensor, values};

/// dL/db[c] = Σ over images and positions of dY[n, c, ..].
pub(super) fn bias_grad(dy: &FlexTensor) -> FlexTensor {
    if !is_f32(&[dy]) {
        let [n, c, h, w] = dims4(dy);
        let g = Flex::float_reshape(
            Flex::float_swap_dims(dy.clone(), 0, 1),
            [c, n * h * w].into(),
        );
        return Flex::float_reshape(Flex::float_sum_dim(g, 1), [c].into());
    }
    let dy = contiguous(dy);
    let [n, c, h, w] = dims4(&dy);
    let out = kernels::bias_grad(values(&dy), n, c, h * w);
    FlexTensor::from_data(TensorData::new(out, Shape::new([c])))
}

/// The geometry of `conv2d(x, w)` with `options`, given the gradient of its output.
fn conv_geom(x: &FlexTensor, w: &FlexTensor, dy: &FlexTensor, o: &ConvOptions<2>) -> Geom {
    let [n, cin, ih, iw] = dims4(x);
    let [cout, _, kh, kw] = dims4(w);
    let [_, _, oh, ow] = dims4(dy);
    Geom {
        n,
        cin,
        ih,
        iw,
        cout,
        oh,
        ow,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding_begin(),
        dilation: o.dilation,
    }
}

/// The geometry of the convolution whose input gradient `conv_transpose2d(x, w)` is: that
/// convolution reads the transposed convolution's output `[n, cout, oh, ow]` and writes `x`'s shape.
fn conv_t_geom(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> Geom {
    let [n, c_x, h, wd] = dims4(x);
    let [_, c_y, kh, kw] = dims4(w);
    let [_, _, oh, ow] = dims4(dy);
    Geom {
        n,
        cin: c_y,
        ih: oh,
        iw: ow,
        cout: c_x,
        oh: h,
        ow: wd,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding,
        dilation: o.dilation,
    }
}

/// The forward convolution: genlab's kernel for f32 and one group, flex's otherwise.
pub fn conv2d_forward(
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    o: ConvOptions<2>,
) -> FlexTensor {
    let f32s = is_f32(&[&x, &w]) && b.as_ref().is_none_or(|b| is_f32(&[b]));
    if !f32s || o.groups != 1 {
        return Flex::conv2d(x, w, b, o);
    }
    let (x, w, b) = (contiguous(&x), contiguous(&w), b.map(|b| contiguous(&b)));
    let [n, cin, ih, iw] = dims4(&x);
    let [cout, _, kh, kw] = dims4(&w);
    let out = |len: usize, k: usize, s: usize, p: (usize, usize), d: usize| {
        (len + p.0 + p.1 - d * (k - 1) - 1) / s + 1
    };
    let oh = out(ih, kh, o.stride[0], o.padding[0], o.dilation[0]);
    let ow = out(iw, kw, o.stride[1], o.padding[1], o.dilation[1]);
    let g = Geom {
        n,
        cin,
        ih,
        iw,
        cout,
        oh,
        ow,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding_begin(),
        dilation: o.dilation,
    };
    let y = kernels::forward(values(&x), values(&w), b.as_ref().map(values), &g);
    tensor(y, [n, cout, oh, ow])
}

pub(super) fn conv2d_w_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (x, dy) = (contiguous(x), contiguous(dy));
    let g = conv_geom(&x, w, &dy, o);
    tensor(kernels::weight_grad(values(&x), values(&dy), &g), dims4(w))
}

pub(super) fn conv2d_x_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (w, dy) = (contiguous(w), contiguous(dy));
    let g = conv_geom(x, &w, &dy, o);
    tensor(kernels::input_grad(values(&w), values(&dy), &g), dims4(x))
}

/// dL/dW `[cin, cout, kh, kw]` of `y = conv_transpose2d(x, w)`: the weight gradient of the
/// convolution that maps dY back to x, with x's gradient in the role of that convolution's dY.
pub(super) fn conv_t2d_w_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv_transpose2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
    }
    let (x, dy) = (contiguous(x), contiguous(dy));
    let g = conv_t_geom(&x, w, &dy, o);
    tensor(kernels::weight_grad(values(&dy), values(&x), &g), dims4(w))
}

/// `(dL/dx, dL/dW)` of `y = conv_transpose2d(x, w)` (f32, one group) in one pass: the column
/// matrix of dY that both need is built once per image (`genlab_kernels::transposed_grads`).
pub(super) fn conv_t2d_grads(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> (FlexTensor, FlexTensor) {
    let (x, w, dy) = (contiguous(x), contiguous(w), contiguous(dy));
    let g = conv_t_geom(&x, &w, &dy, o);
    let (dx, dw) = kernels::transposed_grads(values(&dy), values(&w), values(&x), &g);
    (tensor(dx, dims4(&x)), tensor(dw, dims4(&w)))
}

/// dL/dx of `y = conv_transpose2d(x, w)`: the forward convolution of dY with w.
pub(super) fn conv_t2d_x_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    if !is_f32(&[x, w, dy]) || o.groups != 1 {
        return Flex::conv_transpose2d_x_backward(w.clone(), dy.clone(), o.clone());
    }
    let (w, dy) = (contiguous(w), contiguous(dy));
    let g = conv_t_geom(x, &w, &dy, o);
    tensor(
        kernels::forward(values(&dy), values(&w), None, &g),
        dims4(x),
    )
}

/// The forward transposed convolution: genlab's kernel (the input gradient of the matching
/// convolution, plus the bias) for f32 and one group, flex's otherwise.
pub fn conv_transpose2d_forward(
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    o: ConvTransposeOptions<2>,
) -> FlexTensor {
    let f32s = is_f32(&[&x, &w]) && b.as_ref().is_none_or(|b| is_f32(&[b]));
    if !f32s || o.groups != 1 {
        return Flex::conv_transpose2d(x, w, b, o);
    }
    let (x, w) = (contiguous(&x), contiguous(&w));
    let [n, c_x, h, wd] = dims4(&x);
    let [_, c_y, kh, kw] = dims4(&w);
    let out = |len: usize, k: usize, i: usize| {
        (len - 1) * o.stride[i] + o.dilation[i] * (k - 1) + o.padding_out[i] + 1 - 2 * o.padding[i]
    };
    let (oh, ow) = (out(h, kh, 0), out(wd, kw, 1));
    let g = Geom {
        n,
        cin: c_y,
        ih: oh,
        iw: ow,
        cout: c_x,
        oh: h,
        ow: wd,
        kh,
        kw,
        stride: o.stride,
        pad: o.padding,
        dilation: o.dilation,
    };
    let b = b.map(|b| contiguous(&b));
    let y = kernels::transposed_forward(values(&w), values(&x), b.as_ref().map(values), &g);
    tensor(y, [n, c_y, oh, ow])
}
