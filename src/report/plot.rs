//! Line charts as self-contained SVG (training curves, metrics over steps): no fonts or native
//! libraries needed, and they embed directly in the HTML reports.

use std::fmt::Write as _;

pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    (0..=n * 2)
        .map(|i| start + i as f64 * step)
        .take_while(|v| *v <= hi + 1e-9 * span)
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 0.01 && v.abs() < 1e5) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// The opening of a chart: the svg element, a white background and the title.
fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        esc(title)
    )
}

/// Horizontal grid lines with their labels, from `x_left` to `x_right`.
fn y_grid(s: &mut String, ticks: Vec<f64>, sy: &dyn Fn(f64) -> f64, x_left: f64, x_right: f64) {
    for v in ticks {
        let y = sy(v);
        let _ = write!(
            s,
            r##"<line x1="{x_left}" y1="{y:.1}" x2="{x_right}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x_left - 6.0,
            y + 4.0,
            fmt_tick(v)
        );
    }
}

/// A 640x400 line chart with axes, ticks, a legend, and one polyline per series (non-finite
/// points are skipped).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, l, r, t, b) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    if y1 == y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let sx = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let sy = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let mut s = svg_open(w, h, title);
    y_grid(&mut s, nice_ticks(y0, y1, 5), &sy, l, w - r);
    for v in nice_ticks(x0, x1, 6) {
        let x = sx(v);
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            h - b + 16.0,
            fmt_tick(v)
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        h - b,
        w - r,
        h - b,
        h - b,
        (l + w - r) / 2.0,
        h - 12.0,
        esc(x_label),
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = se
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if path.len() == 1 {
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{}" r="3" fill="{c}"/>"#,
                path[0].split(',').next().unwrap_or("0"),
                path[0].split(',').nth(1).unwrap_or("0")
            );
        }
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = t + 8.0 + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            w - r - 150.0,
            w - r - 130.0,
            w - r - 125.0,
            ly + 4.0,
            esc(se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Grouped bars: one group per label, one bar per series (`values[series][group]`), with
/// optional error bars (`errors`, same shape).
pub fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(&str, Vec<f64>, Vec<f64>)],
) -> String {
    let (w, h, l, r, t, b) = (640.0, 360.0, 70.0, 20.0, 40.0, 60.0);
    let top = series
        .iter()
        .flat_map(|(_, v, e)| {
            v.iter()
                .zip(e)
                .map(|(v, e)| v + if e.is_finite() { *e } else { 0.0 })
        })
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let sy = |y: f64| h - b - y / top * (h - t - b);
    let gw = (w - l - r) / groups.len().max(1) as f64;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    let mut s = svg_open(w, h, title);
    y_grid(&mut s, nice_ticks(0.0, top, 5), &sy, l, w - r);
    for (gi, g) in groups.iter().enumerate() {
        let x0 = l + gi as f64 * gw + gw * 0.1;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            l + (gi as f64 + 0.5) * gw,
            h - b + 16.0,
            esc(g)
        );
        for (si, (_, vals, errs)) in series.iter().enumerate() {
            let (v, e) = (vals[gi], errs[gi]);
            if !v.is_finite() {
                continue;
            }
            let x = x0 + si as f64 * bw;
            let c = COLORS[si % COLORS.len()];
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{c}"/>"#,
                sy(v),
                bw * 0.9,
                (h - b - sy(v)).max(0.0)
            );
            if e.is_finite() && e > 0.0 {
                let cx = x + bw * 0.45;
                let _ = write!(
                    s,
                    r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
                    sy(v - e),
                    sy(v + e)
                );
            }
        }
    }
    let _ = write!(
        s,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        h - b,
        w - r,
        h - b,
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for (si, (name, _, _)) in series.iter().enumerate() {
        let c = COLORS[si % COLORS.len()];
        let x = l + 10.0 + 150.0 * si as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            h - 22.0,
            x + 16.0,
            h - 12.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_a_line_per_series_and_escapes_text() {
        let svg = line_chart(
            "loss <train>",
            "epoch",
            "value",
            &[
                Series {
                    name: "a",
                    points: vec![(1.0, 0.5), (2.0, 0.25)],
                },
                Series {
                    name: "b",
                    points: vec![(1.0, f64::NAN), (2.0, 0.3)],
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("loss &lt;train&gt;") && svg.starts_with("<svg"));
    }

    #[test]
    fn bars_per_group_and_series() {
        let svg = bar_chart(
            "reward",
            "mean",
            &["count".into(), "color".into()],
            &[
                ("a", vec![0.5, 0.6], vec![0.1, f64::NAN]),
                ("b", vec![0.4, 0.7], vec![0.05, 0.05]),
            ],
        );
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 2);
    }
}
