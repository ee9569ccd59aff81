//! Text on a 32-bit framebuffer: what a console screen does, apart from owning
//! the memory. [`TextScreen`] lays characters out in cells of one bitmap font
//! (Noto Sans Mono, 16 px, from `noto-sans-mono-bitmap`), wraps a line at the
//! right edge and scrolls one line up at the bottom. Where the pixels live is a
//! [`Pixels`] implementation's business: the Pi 4 kernel's is the framebuffer
//! the VideoCore hands out (`board/rpi4/screen.rs`), the tests' is a
//! [`PixelBuffer`] in host memory, drawn with this same code from the UART
//! transcript and compared with QEMU's screendump pixel by pixel.
//!
//! Text is drawn in greys (the font's intensity in all three colour bytes), which
//! read the same whichever byte order, RGB or BGR, the display uses.
//!
//! `no_std`, no `cfg(target_arch)`: the layout rules are tested on the host.

#![no_std]

extern crate alloc;

use alloc::{vec, vec::Vec};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight, RasterizedChar};

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;

/// A character cell's width in pixels.
pub const GLYPH_WIDTH: usize = get_raster_width(WEIGHT, HEIGHT);
/// A character cell's height in pixels: one text row.
pub const GLYPH_HEIGHT: usize = HEIGHT.val();
/// A tab moves to the next column that is a multiple of this.
pub const TAB_STOP: usize = 8;
/// Drawn for a character the font does not have.
pub const REPLACEMENT: char = '\u{FFFD}';

/// A 32-bit pixel of grey `intensity` (0 black, 255 white), `0x00RRGGBB` with R = G = B.
pub const fn grey(intensity: u8) -> u32 {
    intensity as u32 * 0x0001_0101
}

/// The font's rendering of `c`, or of [`REPLACEMENT`] if it has none.
pub fn glyph(c: char) -> RasterizedChar {
    get_raster(c, WEIGHT, HEIGHT)
        .or_else(|| get_raster(REPLACEMENT, WEIGHT, HEIGHT))
        .expect("the font is built with U+FFFD (feature unicode-specials)")
}

/// Rows of 32-bit pixels that text is drawn on.
pub trait Pixels {
    /// Set the pixel at column `x` of row `y`.
    fn put(&mut self, x: usize, y: usize, pixel: u32);
    /// Move pixel rows `[from, from + count)` to `[to, to + count)`, `to < from`.
    fn move_rows(&mut self, from: usize, to: usize, count: usize);
    /// Set pixel rows `[y, y + count)` to black.
    fn clear_rows(&mut self, y: usize, count: usize);
    /// Pixel rows `[y, y + count)` changed since the last call: make them
    /// visible to whatever reads the buffer (a display controller that does
    /// not look into the CPU's caches). Called by [`TextScreen::publish`].
    fn publish(&mut self, y: usize, count: usize);
}

/// A text console on `width` x `height` pixels: `cols` x `rows` cells, a cursor
/// that advances one cell per character.
pub struct TextScreen<P> {
    pixels: P,
    cols: usize,
    rows: usize,
    col: usize,
    row: usize,
    /// Pixel rows changed since the last `publish`, as `[start, end)`.
    changed: Option<(usize, usize)>,
}

impl<P: Pixels> TextScreen<P> {
    /// A blank screen on `pixels`, or `None` if `width` x `height` cannot hold
    /// one cell.
    pub fn new(mut pixels: P, width: usize, height: usize) -> Option<Self> {
        let (cols, rows) = (width / GLYPH_WIDTH, height / GLYPH_HEIGHT);
        if cols == 0 || rows == 0 {
            return None;
        }
        pixels.clear_rows(0, height);
        pixels.publish(0, height);
        Some(TextScreen { pixels, cols, rows, col: 0, row: 0, changed: None })
    }

    /// Text cells per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Text rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The pixels drawn so far.
    pub fn pixels(&self) -> &P {
        &self.pixels
    }

    /// Draw `text` at the cursor (call [`TextScreen::publish`] when a whole
    /// message is drawn). `\n` starts a
    /// new line, `\r` returns to its start, `\t` advances to the next tab stop;
    /// other control characters draw nothing. A character that does not fit on
    /// the row goes to the start of the next one; below the last row, the
    /// screen scrolls up one row.
    pub fn write_str(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\n' => self.new_line(),
                '\r' => self.col = 0,
                '\t' => {
                    self.draw(' ');
                    while !self.col.is_multiple_of(TAB_STOP) && self.col < self.cols {
                        self.draw(' ');
                    }
                }
                c if c.is_control() => {}
                c => self.draw(c),
            }
        }
    }

    /// Hand the pixel rows changed since the last call to [`Pixels::publish`],
    /// in one range: once per message, not once per piece of it.
    pub fn publish(&mut self) {
        if let Some((start, end)) = self.changed.take() {
            self.pixels.publish(start, end - start);
        }
    }

    fn draw(&mut self, c: char) {
        if self.col == self.cols {
            self.new_line();
        }
        let (x0, y0) = (self.col * GLYPH_WIDTH, self.row * GLYPH_HEIGHT);
        for (y, line) in glyph(c).rows().enumerate() {
            for (x, &intensity) in line.iter().enumerate() {
                self.pixels.put(x0 + x, y0 + y, grey(intensity));
            }
        }
        self.col += 1;
        self.mark_changed(y0, y0 + GLYPH_HEIGHT);
    }

    fn new_line(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            let last = (self.rows - 1) * GLYPH_HEIGHT;
            self.pixels.move_rows(GLYPH_HEIGHT, 0, last);
            self.pixels.clear_rows(last, GLYPH_HEIGHT);
            self.mark_changed(0, last + GLYPH_HEIGHT);
        }
    }

    fn mark_changed(&mut self, start: usize, end: usize) {
        self.changed = Some(match self.changed {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        });
    }
}

impl<P: Pixels> core::fmt::Write for TextScreen<P> {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        TextScreen::write_str(self, text);
        Ok(())
    }
}

/// Pixels in host memory, row after row: what a screen is expected to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixelBuffer {
    pub width: usize,
    pub height: usize,
    /// `width * height` pixels, `0x00RRGGBB`.
    pub data: Vec<u32>,
}

impl PixelBuffer {
    /// A black buffer of `width` x `height`.
    pub fn new(width: usize, height: usize) -> Self {
        PixelBuffer { width, height, data: vec![0; width * height] }
    }

    /// The pixel at column `x` of row `y`.
    pub fn at(&self, x: usize, y: usize) -> u32 {
        self.data[y * self.width + x]
    }

    /// Whether text row `row` shows `text` from its first cell on.
    pub fn row_shows(&self, row: usize, text: &str) -> bool {
        text.chars().enumerate().all(|(col, c)| self.cell_shows(col, row, c))
    }

    /// Whether the cell at column `col` of text row `row` shows `c`, compared
    /// pixel by pixel with the font's glyph.
    pub fn cell_shows(&self, col: usize, row: usize, c: char) -> bool {
        glyph(c).rows().enumerate().all(|(y, line)| {
            line.iter().enumerate().all(|(x, &intensity)| {
                let (px, py) = (col * GLYPH_WIDTH + x, row * GLYPH_HEIGHT + y);
                px < self.width && py < self.height && self.at(px, py) == grey(intensity)
            })
        })
    }
}

impl Pixels for PixelBuffer {
    fn put(&mut self, x: usize, y: usize, pixel: u32) {
        self.data[y * self.width + x] = pixel;
    }
    fn move_rows(&mut self, from: usize, to: usize, count: usize) {
        let w = self.width;
        self.data.copy_within(from * w..(from + count) * w, to * w);
    }
    fn clear_rows(&mut self, y: usize, count: usize) {
        let w = self.width;
        self.data[y * w..(y + count) * w].fill(0);
    }
    fn publish(&mut self, _y: usize, _count: usize) {}
}

/// What a screen of `width` x `height` shows after `text` was written to it.
pub fn render(text: &str, width: usize, height: usize) -> Option<PixelBuffer> {
    let mut screen = TextScreen::new(PixelBuffer::new(width, height), width, height)?;
    screen.write_str(text);
    screen.publish();
    Some(screen.pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell_shows(buffer: &PixelBuffer, col: usize, row: usize, c: char) -> bool {
        buffer.cell_shows(col, row, c)
    }

    fn row_shows(buffer: &PixelBuffer, row: usize, text: &str) -> bool {
        buffer.row_shows(row, text)
    }

    /// A buffer that records what was published.
    struct Recording {
        buffer: PixelBuffer,
        published: Vec<(usize, usize)>,
    }

    impl Pixels for Recording {
        fn put(&mut self, x: usize, y: usize, pixel: u32) {
            self.buffer.put(x, y, pixel)
        }
        fn move_rows(&mut self, from: usize, to: usize, count: usize) {
            self.buffer.move_rows(from, to, count)
        }
        fn clear_rows(&mut self, y: usize, count: usize) {
            self.buffer.clear_rows(y, count)
        }
        fn publish(&mut self, y: usize, count: usize) {
            self.published.push((y, count));
        }
    }

    #[test]
    fn the_font_is_a_fixed_cell_and_has_every_printable_ascii_character() {
        assert_eq!((GLYPH_WIDTH, GLYPH_HEIGHT), (glyph('M').width(), glyph('M').height()));
        for c in ' '..='~' {
            assert!(get_raster(c, WEIGHT, HEIGHT).is_some(), "{c:?} missing");
            assert_eq!(glyph(c).width(), GLYPH_WIDTH);
        }
        assert!(glyph('A').pixels().iter().any(|&i| i > 0), "'A' draws something");
        assert!(glyph(' ').pixels().iter().all(|&i| i == 0), "' ' draws nothing");
    }

    #[test]
    fn text_fills_cells_from_the_top_left_and_a_new_line_starts_the_next_row() {
        let screen = render("ab\ncd", 10 * GLYPH_WIDTH, 3 * GLYPH_HEIGHT).unwrap();
        assert!(row_shows(&screen, 0, "ab"));
        assert!(row_shows(&screen, 1, "cd"));
        assert!(!row_shows(&screen, 0, "cd"));
    }

    #[test]
    fn a_full_row_wraps_only_when_another_character_comes() {
        let width = 4 * GLYPH_WIDTH;
        // Exactly four characters, then a new line: no empty row between.
        let screen = render("abcd\nef", width, 3 * GLYPH_HEIGHT).unwrap();
        assert!(row_shows(&screen, 0, "abcd") && row_shows(&screen, 1, "ef"));
        // Six characters: the last two on the next row.
        let screen = render("abcdef", width, 3 * GLYPH_HEIGHT).unwrap();
        assert!(row_shows(&screen, 0, "abcd") && row_shows(&screen, 1, "ef"));
    }

    #[test]
    fn below_the_last_row_the_screen_scrolls_up_one_row() {
        let screen = render("one\ntwo\nthree\nfour", 8 * GLYPH_WIDTH, 3 * GLYPH_HEIGHT).unwrap();
        assert!(row_shows(&screen, 0, "two"));
        assert!(row_shows(&screen, 1, "three"));
        assert!(row_shows(&screen, 2, "four    "), "the new row starts blank");
        // The same after a trailing new line: the last row is empty.
        let screen = render("one\ntwo\nthree\n", 8 * GLYPH_WIDTH, 3 * GLYPH_HEIGHT).unwrap();
        assert!(row_shows(&screen, 0, "two") && row_shows(&screen, 1, "three") && row_shows(&screen, 2, "        "));
    }

    #[test]
    fn tabs_go_to_the_next_stop_and_returns_to_the_row_start() {
        let screen = render("a\tb\nxyz\rX", 20 * GLYPH_WIDTH, 2 * GLYPH_HEIGHT).unwrap();
        assert!(cell_shows(&screen, 0, 0, 'a') && cell_shows(&screen, TAB_STOP, 0, 'b'));
        assert!(row_shows(&screen, 1, "Xyz"));
    }

    #[test]
    fn characters_the_font_lacks_draw_the_replacement_and_controls_draw_nothing() {
        let screen = render("\u{2603}\u{7}b", 4 * GLYPH_WIDTH, GLYPH_HEIGHT).unwrap();
        assert!(cell_shows(&screen, 0, 0, REPLACEMENT));
        assert!(cell_shows(&screen, 1, 0, 'b'), "the bell took no cell");
    }

    #[test]
    fn the_margin_right_and_below_the_cells_stays_black() {
        let (width, height) = (3 * GLYPH_WIDTH + 5, 2 * GLYPH_HEIGHT + 7);
        let screen = render("MMMMMMMMMMMMMMMMMMM", width, height).unwrap();
        for y in 0..height {
            for x in 3 * GLYPH_WIDTH..width {
                assert_eq!(screen.at(x, y), 0);
            }
        }
        for y in 2 * GLYPH_HEIGHT..height {
            for x in 0..width {
                assert_eq!(screen.at(x, y), 0);
            }
        }
    }

    #[test]
    fn publishing_hands_over_exactly_the_rows_changed_since_the_last_time() {
        let (width, height) = (8 * GLYPH_WIDTH, 2 * GLYPH_HEIGHT);
        let recording = Recording { buffer: PixelBuffer::new(width, height), published: Vec::new() };
        let mut screen = TextScreen::new(recording, width, height).unwrap();
        assert_eq!(screen.pixels.published, [(0, height)], "the cleared screen");
        for piece in ["a", "\n", "b"] {
            screen.write_str(piece);
            screen.publish();
        }
        // A new line that does not scroll draws nothing: nothing to publish.
        assert_eq!(&screen.pixels.published[1..], [(0, GLYPH_HEIGHT), (GLYPH_HEIGHT, GLYPH_HEIGHT)]);
        screen.write_str("x");
        screen.write_str("\nc");
        screen.publish();
        assert_eq!(screen.pixels.published.last(), Some(&(0, height)), "a scroll changes every row");
        screen.publish();
        assert_eq!(screen.pixels.published.len(), 4, "nothing changed, nothing published");
    }

    #[test]
    fn a_screen_smaller_than_one_cell_is_refused() {
        assert!(render("x", GLYPH_WIDTH - 1, 100).is_none());
        assert!(render("x", 100, GLYPH_HEIGHT - 1).is_none());
    }
}
