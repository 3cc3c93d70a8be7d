//! QR codes as inline SVG, drawn from the `qrcode` crate's module matrix: one `<path>` for the
//! dark modules (a rectangle per run of them in a row) on a light square, so a page needs no
//! image, no script and no style attribute to show one (its Content-Security-Policy allows
//! none of those).

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin on each side, as the QR specification asks.
const QUIET_ZONE_MODULES: usize = 4;

/// `text` as an `<svg>` element labelled `label` (already-escaped HTML attribute text), or
/// `None` when it is too long for a QR code.
pub(crate) fn svg(text: &str, label: &str) -> Option<String> {
    // Medium error correction: what wallets read best from a screen.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let full = width + 2 * QUIET_ZONE_MODULES;
    let colors = code.to_colors();
    let mut path = String::with_capacity(width * width * 2);
    // Each run of dark modules in a row is one rectangle.
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < row.len() {
            let run = row[x..].iter().take_while(|c| **c == Color::Dark).count();
            if run > 0 {
                let (left, top) = (x + QUIET_ZONE_MODULES, y + QUIET_ZONE_MODULES);
                path.push_str(&format!("M{left} {top}h{run}v1h-{run}z"));
            }
            x += run.max(1);
        }
    }
    Some(format!(
        "<svg class=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {full} {full}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"{label}\">\
         <rect width=\"{full}\" height=\"{full}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_code_with_its_quiet_zone() {
        let svg = svg("bitcoin:bc1qexample?amount=0.0001", "QR").expect("fits");
        // Version 3 at level M for 33 bytes: 29 modules, plus the margin.
        assert!(svg.contains("viewBox=\"0 0 37 37\""), "{svg}");
        assert!(svg.contains("M4 4h7v1h-7z"), "the finder pattern's top edge is dark");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn too_long_is_none() {
        assert!(svg(&"x".repeat(5_000), "QR").is_none());
    }
}
