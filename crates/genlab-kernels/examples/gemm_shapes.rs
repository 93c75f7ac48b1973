use std::time::Instant;
// dst(i,j) row-major m x n; lhs (i,k) strides; rhs (k,j) strides
#[allow(clippy::too_many_arguments)]
fn mm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    ls: [isize; 2],
    rhs: &[f32],
    rs: [isize; 2],
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            ls[1],
            ls[0],
            rhs.as_ptr(),
            rs[1],
            rs[0],
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
fn time(name: &str, flop: f64, mut f: impl FnMut()) {
    let mut v = vec![];
    for i in 0..25 {
        let t = Instant::now();
        for _ in 0..64 {
            f();
        }
        if i >= 5 {
            v.push(t.elapsed().as_secs_f64() / 64.0);
        }
    }
    v.sort_by(f64::total_cmp);
    let t = v[v.len() / 2];
    println!("{name:50} {:8.1} us {:6.0} GF/s", t * 1e6, flop / t / 1e9);
}
fn main() {
    for (cin, cout) in [(32usize, 64usize), (64, 128)] {
        let rows = cin * 16;
        let plane = 49;
        let w = vec![0.5f32; cout * rows];
        let col = vec![0.25f32; rows * plane];
        let dy = vec![0.1f32; cout * plane];
        let mut out = vec![0f32; rows * plane.max(cout)];
        let flop = 2.0 * (cout * rows * plane) as f64;
        println!("cin {cin} cout {cout}");
        time("fwd  Y[cout,plane] = W . col", flop, || {
            mm(
                cout,
                plane,
                rows,
                &mut out,
                &w,
                [rows as isize, 1],
                &col,
                [plane as isize, 1],
            )
        });
        time("fwd  Yt[plane,cout] = colT(view) . Wt(view)", flop, || {
            mm(
                plane,
                cout,
                rows,
                &mut out,
                &col,
                [1, plane as isize],
                &w,
                [1, rows as isize],
            )
        });
        // colT contiguous [plane, rows]
        time(
            "fwd  Yt[plane,cout] = colT(contig) . Wt(view)",
            flop,
            || {
                mm(
                    plane,
                    cout,
                    rows,
                    &mut out,
                    &col,
                    [rows as isize, 1],
                    &w,
                    [1, rows as isize],
                )
            },
        );
        time("fwd  Y[cout,plane] = W . colT(contig)^T", flop, || {
            mm(
                cout,
                plane,
                rows,
                &mut out,
                &w,
                [rows as isize, 1],
                &col,
                [1, rows as isize],
            )
        });
        time("ig   col[rows,plane] = Wt(view) . dY", flop, || {
            mm(
                rows,
                plane,
                cout,
                &mut out,
                &w,
                [1, rows as isize],
                &dy,
                [plane as isize, 1],
            )
        });
        time("ig   colT[plane,rows] = dYt(view) . W", flop, || {
            mm(
                plane,
                rows,
                cout,
                &mut out,
                &dy,
                [1, plane as isize],
                &w,
                [rows as isize, 1],
            )
        });
        time("wg   dW[cout,rows] = dY . colT(view)", flop, || {
            mm(
                cout,
                rows,
                plane,
                &mut out,
                &dy,
                [plane as isize, 1],
                &col,
                [1, plane as isize],
            )
        });
        time("wg   dW[cout,rows] = dY . colT(contig)", flop, || {
            mm(
                cout,
                rows,
                plane,
                &mut out,
                &dy,
                [plane as isize, 1],
                &col,
                [rows as isize, 1],
            )
        });
    }
}
