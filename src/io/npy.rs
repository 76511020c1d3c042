//! Reading NumPy `.npz` archives (`np.savez`, stored or deflated) of little-endian float arrays:
//! enough to load pytorch-fid's `--save-stats` files (`mu`, `sigma`) as FID references.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// One array: its shape and its values as f64, in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}':"))? + key.len() + 3;
    Some(header[at..].trim_start())
}

/// Parse one `.npy` file (format 1.0 to 3.0) holding `<f8` or `<f4`, not Fortran-ordered.
pub fn parse_npy(bytes: &[u8], origin: &str) -> Result<Array> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{origin}: not a .npy array");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("{origin}: .npy format version {v} is not supported"),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + len)
            .ok_or_else(|| anyhow!("{origin}: truncated header"))?,
    )?;
    let descr = header_value(header, "descr").ok_or_else(|| anyhow!("{origin}: no descr"))?;
    let width = if descr.starts_with("'<f8'") {
        8
    } else if descr.starts_with("'<f4'") {
        4
    } else {
        bail!(
            "{origin}: dtype {} is not supported (little-endian float32 or float64 only)",
            &descr[..descr.find(',').unwrap_or(descr.len())]
        );
    };
    if header_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        bail!("{origin}: Fortran-ordered arrays are not supported");
    }
    let shape_text = header_value(header, "shape").ok_or_else(|| anyhow!("{origin}: no shape"))?;
    let inner = &shape_text[1..shape_text
        .find(')')
        .ok_or_else(|| anyhow!("{origin}: bad shape"))?];
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("{origin}: bad shape {inner:?}"))
        })
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + len..];
    if body.len() < n * width {
        bail!("{origin}: {} bytes of data for {n} values", body.len());
    }
    let data = body
        .chunks_exact(width)
        .take(n)
        .map(|c| {
            if width == 8 {
                f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
            } else {
                f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64
            }
        })
        .collect();
    Ok(Array { shape, data })
}

/// Every array of an `.npz` file by name (without the `.npy` suffix).
pub fn read_npz(path: &Path) -> Result<HashMap<String, Array>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(f)
        .with_context(|| format!("{} is not an .npz (zip) archive", path.display()))?;
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{}: corrupt entry {i}", path.display()))?;
        let name = entry
            .name()
            .with_context(|| format!("{}: entry {i} has no readable name", path.display()))?
            .trim_end_matches(".npy")
            .to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: could not read `{name}`", path.display()))?;
        out.insert(
            name.clone(),
            parse_npy(&bytes, &format!("{}:{name}", path.display()))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_made_npy() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for v in [1f32, 2.0, 3.0, 4.5] {
            bytes.extend(v.to_le_bytes());
        }
        let a = parse_npy(&bytes, "t").unwrap();
        assert_eq!(
            a,
            Array {
                shape: vec![2, 2],
                data: vec![1.0, 2.0, 3.0, 4.5]
            }
        );
        assert!(parse_npy(b"not numpy", "t").is_err());
    }
}
