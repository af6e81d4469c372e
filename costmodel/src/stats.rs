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

/// Kendall's τ-b, O(n²) — fine for the few thousand rows of a validation set.
pub fn kendall(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "kendall of unequal lengths");
    let (mut c, mut d, mut ta, mut tb) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let (x, y) = ((a[i] - a[j]).signum() as i64, (b[i] - b[j]).signum() as i64);
            match (x, y) {
                (0, 0) => {}
                (0, _) => ta += 1,
                (_, 0) => tb += 1,
                _ if x == y => c += 1,
                _ => d += 1,
            }
        }
    }
    let n0 = (c + d + ta) as f64 * (c + d + tb) as f64;
    (c - d) as f64 / n0.sqrt()
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
    }
}
