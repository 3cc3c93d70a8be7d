//! QR codes for the terminal: what `flash` prints under an invoice, an address, an LNURL or a
//! wallet-connect URI when stdout is a terminal, for a phone to scan.
//!
//! Two rows of modules share one line of text through Unicode half blocks (`▀`, `▄`, `█`), so
//! the code keeps its square shape in a terminal's tall cells. Light modules are the ones
//! drawn (in the terminal's foreground colour), as terminals are usually light on dark; the
//! quiet zone around the code is drawn light too.

use qrcode::{Color, QrCode};

use flash_sdk::ClientError;

/// Modules of quiet zone on each side of the code.
pub const QR_QUIET_ZONE: usize = 2;

/// The text for a pair of module rows: light above (`top`) and light below (`bottom`).
fn half_block(top: bool, bottom: bool) -> char {
    match (top, bottom) {
        (true, true) => '█',
        (true, false) => '▀',
        (false, true) => '▄',
        (false, false) => ' ',
    }
}

/// Renders `modules` (a `width`×`width` grid, row by row, `true` for light) with a quiet zone,
/// two rows per line; every line ends with `\n`.
pub fn render_half_blocks(modules: &[bool], width: usize) -> String {
    let full = width + 2 * QR_QUIET_ZONE;
    let light = |x: usize, y: usize| -> bool {
        let inside = QR_QUIET_ZONE..QR_QUIET_ZONE + width;
        if !inside.contains(&x) || !inside.contains(&y) {
            return true;
        }
        modules
            .get((y - QR_QUIET_ZONE) * width + (x - QR_QUIET_ZONE))
            .copied()
            .unwrap_or(true)
    };
    let mut out = String::with_capacity(full.div_ceil(2) * (full * 3 + 1));
    for y in (0..full).step_by(2) {
        for x in 0..full {
            // An odd last row has the terminal's background below it.
            let bottom = y + 1 < full && light(x, y + 1);
            out.push(half_block(light(x, y), bottom));
        }
        out.push('\n');
    }
    out
}

/// The QR code of `data`, rendered for a terminal ([`render_half_blocks`]).
pub fn qr_text(data: &str) -> Result<String, ClientError> {
    let code = QrCode::new(data.as_bytes())
        .map_err(|e| ClientError::InvalidInput(format!("cannot make a QR code of it: {e}")))?;
    let modules: Vec<bool> = code.to_colors().into_iter().map(|c| c == Color::Light).collect();
    Ok(render_half_blocks(&modules, code.width()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a rendering back into rows of modules (`true` for light), quiet zone included.
    fn read_back(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?} in the QR code"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn a_small_grid_renders_two_rows_per_line() {
        // 1 = dark (drawn as background), 0 = light.
        let modules = [true, false, false, true];
        let text = render_half_blocks(&modules, 2);
        let full = 2 + 2 * QR_QUIET_ZONE;
        assert_eq!(text.lines().count(), full.div_ceil(2));
        assert!(text.lines().all(|l| l.chars().count() == full), "{text}");
        let rows = read_back(&text);
        assert_eq!(&rows[QR_QUIET_ZONE][QR_QUIET_ZONE..QR_QUIET_ZONE + 2], &[true, false]);
        assert_eq!(
            &rows[QR_QUIET_ZONE + 1][QR_QUIET_ZONE..QR_QUIET_ZONE + 2],
            &[false, true]
        );
        assert!(rows[0].iter().all(|m| *m), "the quiet zone is light");
    }

    #[test]
    fn an_invoice_round_trips_through_the_rendering() -> Result<(), ClientError> {
        let data = "LIGHTNING:LNBCRT10U1PJQQQQQPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQ";
        let text = qr_text(data)?;
        let code = QrCode::new(data.as_bytes()).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let width = code.width();
        let rows = read_back(&text);
        let colors = code.to_colors();
        for y in 0..width {
            for x in 0..width {
                let light = colors[y * width + x] == Color::Light;
                assert_eq!(rows[y + QR_QUIET_ZONE][x + QR_QUIET_ZONE], light, "module ({x}, {y})");
            }
        }
        // The finder pattern's corner is dark.
        assert!(!rows[QR_QUIET_ZONE][QR_QUIET_ZONE]);
        Ok(())
    }

    #[test]
    fn too_much_data_is_an_error_not_a_panic() {
        assert!(qr_text(&"x".repeat(10_000)).is_err());
    }
}
