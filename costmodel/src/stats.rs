//! Rank statistics for scoring predictions against measurements: Spearman's ρ and Kendall's τ
//! (τ-b, ties handled), mean absolute percentage error and the share within ±10 %.

/// Average ranks (1-based), ties sharing their mean rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation; `NaN` when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson of unequal lengths");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman's rank correlation ρ (Pearson of average ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Kendall's τ-b (ties handled), in O(n log n) by Knight's algorithm: sort the pairs by `a`
/// then `b`, and count the swaps a stable merge sort by `b` makes — each is a discordant pair.
/// Every pair is then concordant, discordant or tied, so τ-b follows from the swaps and the
/// tied pairs (in `a`, in `b`, in both). A study pools hundreds of thousands of held-out rows,
/// where counting the n²/2 pairs one by one took minutes.
pub fn kendall(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "kendall of unequal lengths");
    let mut idx: Vec<usize> = (0..a.len()).collect();
    idx.sort_by(|&i, &j| a[i].total_cmp(&a[j]).then(b[i].total_cmp(&b[j])));
    let tied_a = tied_pairs(&idx, |&i, &j| a[i] == a[j]);
    let tied_both = tied_pairs(&idx, |&i, &j| a[i] == a[j] && b[i] == b[j]);
    let mut by_b: Vec<f64> = idx.iter().map(|&i| b[i]).collect();
    let discordant = merge_sort_swaps(&mut by_b);
    let tied_b = tied_pairs(&by_b, |x, y| x == y);
    let n = a.len() as i64;
    let all = n * (n - 1) / 2;
    let untied_a = (all - tied_a) as f64;
    let untied_b = (all - tied_b) as f64;
    // Concordant + discordant = all − tied_a − tied_b + tied_both.
    let c_minus_d = all - tied_a - tied_b + tied_both - 2 * discordant;
    c_minus_d as f64 / (untied_a * untied_b).sqrt()
}

/// Pairs of equal neighbours in a sequence sorted so that equal items are adjacent: Σ t(t−1)/2
/// over its runs of `t` equal items.
fn tied_pairs<T>(sorted: &[T], eq: impl Fn(&T, &T) -> bool) -> i64 {
    let (mut pairs, mut run) = (0i64, 1i64);
    for w in sorted.windows(2) {
        if eq(&w[0], &w[1]) {
            run += 1;
        } else {
            pairs += run * (run - 1) / 2;
            run = 1;
        }
    }
    pairs + run * (run - 1) / 2
}

/// Sorts `v` (a bottom-up, stable merge sort) and returns how many pairs it found out of
/// order — strictly greater before smaller, equal items never counting.
fn merge_sort_swaps(v: &mut [f64]) -> i64 {
    let n = v.len();
    let mut buf = vec![0.0; n];
    let mut swaps = 0i64;
    let mut width = 1;
    while width < n {
        for lo in (0..n).step_by(2 * width) {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j, mut k) = (lo, mid, lo);
            while i < mid && j < hi {
                if v[j] < v[i] {
                    // v[j] jumps every item left in the left half.
                    swaps += (mid - i) as i64;
                    buf[k] = v[j];
                    j += 1;
                } else {
                    buf[k] = v[i];
                    i += 1;
                }
                k += 1;
            }
            buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
            k += mid - i;
            buf[k..k + hi - j].copy_from_slice(&v[j..hi]);
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
    swaps
}

/// Mean absolute percentage error of `pred` against `truth` (rows with truth 0 skipped), %.
pub fn mape(pred: &[f64], truth: &[f64]) -> f64 {
    let v: Vec<f64> = pred.iter().zip(truth).filter(|(_, &t)| t != 0.0).map(|(p, t)| ((p - t) / t).abs()).collect();
    100.0 * v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Share of predictions within ±`tol` (relative) of the truth, in [0, 1].
pub fn within(pred: &[f64], truth: &[f64], tol: f64) -> f64 {
    let hits = pred.iter().zip(truth).filter(|(p, t)| ((*p - *t) / *t).abs() <= tol).count();
    hits as f64 / pred.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // scipy.stats.spearmanr([1,2,3,4,5],[2,1,4,3,5]) = 0.8; kendalltau = 0.6.
        assert!((spearman(&[1., 2., 3., 4., 5.], &[2., 1., 4., 3., 5.]) - 0.8).abs() < 1e-12);
        assert!((kendall(&[1., 2., 3., 4., 5.], &[2., 1., 4., 3., 5.]) - 0.6).abs() < 1e-12);
        assert!((mape(&[110.0, 90.0], &[100.0, 100.0]) - 10.0).abs() < 1e-9);
        assert_eq!(within(&[105.0, 120.0], &[100.0, 100.0], 0.1), 0.5);
        // scipy.stats.kendalltau([1,2,2,3,4,4],[1,3,2,2,4,4]) = 0.76923 = 10/13 (τ-b, ties on
        // both sides: 15 pairs, 2 tied in each, 1 of them in both, 1 discordant).
        let t = kendall(&[1., 2., 2., 3., 4., 4.], &[1., 3., 2., 2., 4., 4.]);
        assert!((t - 10.0 / 13.0).abs() < 1e-12, "{t}");
        assert!(kendall(&[1.0], &[2.0]).is_nan() && kendall(&[], &[]).is_nan());
    }

    /// τ-b by counting every pair: the definition the fast [`kendall`] must agree with.
    fn kendall_by_pairs(a: &[f64], b: &[f64]) -> f64 {
        // Not `(x - y).signum()`: that is 1 for equal values, never a tie.
        let sign = |x: f64, y: f64| x.partial_cmp(&y).map_or(0, |o| o as i64);
        let (mut c, mut d, mut ta, mut tb) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..a.len() {
            for j in i + 1..a.len() {
                match (sign(a[i], a[j]), sign(b[i], b[j])) {
                    (0, 0) => {}
                    (0, _) => ta += 1,
                    (_, 0) => tb += 1,
                    (x, y) if x == y => c += 1,
                    _ => d += 1,
                }
            }
        }
        (c - d) as f64 / ((c + d + ta) as f64 * (c + d + tb) as f64).sqrt()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// On short vectors with many ties (values from a small set), the O(n log n) τ-b is the
        /// pair-counting one.
        #[test]
        fn kendall_counts_the_pairs(v in proptest::collection::vec((0u8..6, 0u8..6), 2..80)) {
            let a: Vec<f64> = v.iter().map(|p| p.0 as f64).collect();
            let b: Vec<f64> = v.iter().map(|p| p.1 as f64 * 0.5).collect();
            let (fast, slow) = (kendall(&a, &b), kendall_by_pairs(&a, &b));
            proptest::prop_assert!(fast == slow || (fast.is_nan() && slow.is_nan()) || (fast - slow).abs() < 1e-12, "{} vs {}", fast, slow);
        }
    }
}
