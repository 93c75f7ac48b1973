//! The convolution kernels: forward pass, weight and input gradients, the transposed
//! convolution, and the bias gradient.

mod channels_last;
pub(crate) mod forward;
pub(crate) mod input_grad;
pub(crate) mod transposed;
pub(crate) mod weight_grad;

/// dL/db `[c]`: the sum of `dy [n, c, h, w]` over images and positions (batch norm's channel
/// sums: f32 within a plane, f64 across planes, channels in parallel).
pub fn bias_grad(dy: &[f32], n: usize, c: usize, plane: usize) -> Vec<f32> {
    let len = (n * c * plane).min(dy.len());
    crate::pointwise::channel_sums(len, c, plane, |_, k| dy[k])
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::input_grad::input_grad;
    use super::weight_grad::weight_grad;
    use super::*;
    use crate::geometry::Geom;
    use crate::test_util::lcg;

    /// Central finite differences in f64 arithmetic of the loss sum(conv(x) * r), evaluated with
    /// plain loops, against the weight and input gradients of the kernels.
    #[test]
    fn kernels_match_finite_differences() {
        let g = Geom {
            n: 2,
            cin: 2,
            ih: 5,
            iw: 6,
            cout: 3,
            oh: 3,
            ow: 3,
            kh: 3,
            kw: 2,
            stride: [2, 2],
            pad: [1, 0],
            dilation: [1, 2],
        };
        let x = lcg(1, g.n * g.in_len());
        let w = lcg(2, g.cout * g.col_rows());
        let r = lcg(3, g.n * g.cout * g.out_plane());
        // The loss by direct summation, f64.
        let loss = |x: &[f32], w: &[f32]| -> f64 {
            let mut total = 0f64;
            for n in 0..g.n {
                for co in 0..g.cout {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let mut acc = 0f64;
                            for ci in 0..g.cin {
                                for ki in 0..g.kh {
                                    for kj in 0..g.kw {
                                        let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize
                                            - g.pad[0] as isize;
                                        let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize
                                            - g.pad[1] as isize;
                                        if iy < 0
                                            || ix < 0
                                            || iy >= g.ih as isize
                                            || ix >= g.iw as isize
                                        {
                                            continue;
                                        }
                                        let xv = x[((n * g.cin + ci) * g.ih + iy as usize) * g.iw
                                            + ix as usize];
                                        let wv = w[((co * g.cin + ci) * g.kh + ki) * g.kw + kj];
                                        acc += xv as f64 * wv as f64;
                                    }
                                }
                            }
                            total += acc * r[((n * g.cout + co) * g.oh + oy) * g.ow + ox] as f64;
                        }
                    }
                }
            }
            total
        };
        let dw = weight_grad(&x, &r, &g);
        let dx = input_grad(&w, &r, &g);
        let eps = 1e-2f32;
        for (i, analytic) in dw.iter().enumerate() {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += eps;
            b[i] -= eps;
            let numeric = (loss(&x, &a) - loss(&x, &b)) / (2.0 * eps as f64);
            assert!(
                (numeric - *analytic as f64).abs() < 1e-3,
                "dW[{i}]: {numeric} vs {analytic}"
            );
        }
        for (i, analytic) in dx.iter().enumerate() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += eps;
            b[i] -= eps;
            let numeric = (loss(&a, &w) - loss(&b, &w)) / (2.0 * eps as f64);
            assert!(
                (numeric - *analytic as f64).abs() < 1e-3,
                "dX[{i}]: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn bias_grad_sums_images_and_positions() {
        // dy [2, 2, 1, 2]
        let dy = [1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0];
        assert_eq!(bias_grad(&dy, 2, 2, 2), vec![10.0, 100.0]);
    }
}
